#include "host_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace rk {
namespace {

constexpr size_t kPage = 4096;
// From 64 KiB up: glibc serves 128 KiB and more with fresh mmap pages (its
// mmap threshold), whose first-touch faults cost more than a small op.
constexpr size_t kMinBytes = size_t{64} << 10;

// Eight classes per power of two, whole pages: a block serves any request
// up to 1/8 smaller, so outputs whose length varies a little from step to
// step (sequence lengths) still find one. The slack is address space only:
// pages never touched are never backed.
size_t sizeClass(size_t bytes) {
  size_t top = kPage;
  while (top * 2 <= bytes) top *= 2;
  const size_t step = std::max(kPage, top / 8);
  return (bytes + step - 1) / step * step;
}

// Blocks from mmap, so that a release gives the memory back to the OS at
// once (malloc may keep it). Blocks of kHugeMin and more are 2 MiB aligned
// and advised MADV_HUGEPAGE (transparent huge pages are usually in
// "madvise" mode). Measured on this VM (Xeon, THP enabled and defrag
// "madvise"), 2 threads streaming 512 MiB through the token log-prob
// forward read 25 GB/s with huge pages against 19 to 23 GB/s with 4 KiB
// pages (one TLB entry per 2 MiB, and the prefetchers stop at page ends
// less often); first touch took 0.13 ms/MiB against 0.4, except while the
// kernel must compact memory to find free huge pages (2 ms/MiB, seen on the
// first large block of a fresh machine). Pooled blocks are touched once and
// reused, so the steady state pays none of it. RLHF_KERNELS_HUGE_PAGES=0
// turns the advice off.
constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kHugeMin = size_t{4} << 20;

// hugeFrom: blocks of this many bytes and up are huge-page blocks (0: none).
void* mapBlock(size_t capacity, size_t hugeFrom) {
  const bool huge = hugeFrom > 0 && capacity >= hugeFrom;
  const size_t span = huge ? capacity + kHuge : capacity;
  void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  if (!huge) return p;
  // Keep the 2 MiB aligned capacity bytes inside the span; unmap the rest,
  // so that release() can munmap(data, capacity) as for any block.
  char* base = static_cast<char*>(p);
  char* data = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base) + kHuge - 1) & ~(kHuge - 1));
  if (data > base) munmap(base, static_cast<size_t>(data - base));
  if (char* end = data + capacity; end < base + span) munmap(end, static_cast<size_t>(base + span - end));
#ifdef MADV_HUGEPAGE  // Linux
  madvise(data, capacity, MADV_HUGEPAGE);  // advice only: failure leaves 4 KiB pages
#endif
  return data;
}

size_t defaultLimit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const size_t ram = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
  return std::min(ram / 8, size_t{1} << 30);
}

}  // namespace

HostPool& HostPool::global() {
  static HostPool* pool = new HostPool();  // never destroyed: finalizers may run during exit
  return *pool;
}

HostPool::HostPool() {
  stats_.limit = defaultLimit();
  stats_.minBytes = kMinBytes;
  if (const char* v = std::getenv("RLHF_KERNELS_HOST_POOL"); v && *v) {
    char* end = nullptr;
    const unsigned long long mib = std::strtoull(v, &end, 10);
    if (end && *end == '\0') stats_.limit = static_cast<size_t>(mib) << 20;
  }
#ifdef MADV_HUGEPAGE  // elsewhere hugeFrom stays 0: no huge-page blocks
  const char* huge = std::getenv("RLHF_KERNELS_HUGE_PAGES");
  stats_.hugeFrom = huge && std::string(huge) == "0" ? 0 : kHugeMin;
#endif
  if (const char* v = std::getenv("RLHF_KERNELS_HOST_POOL_POISON"); v && std::string(v) == "1") {
    stats_.poison = true;
    stats_.minBytes = 0;
  }
}

void* HostPool::acquire(size_t bytes, size_t* capacity) {
  const size_t cap = sizeClass(std::max<size_t>(bytes, 1));
  void* data = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = idle_.find(cap);
    if (it != idle_.end()) {
      data = it->second.back().data;
      it->second.pop_back();
      if (it->second.empty()) idle_.erase(it);
      stats_.idle -= cap;
    } else {
      if (cap > stats_.limit) return nullptr;
      while (stats_.inUse + stats_.idle + cap > stats_.limit && !idle_.empty()) evictOldest();
      if (stats_.inUse + stats_.idle + cap > stats_.limit) return nullptr;
    }
    stats_.inUse += cap;  // counted before mapping, so that racing callers respect the limit
  }
  if (!data) data = mapBlock(cap, stats_.hugeFrom);
  if (!data) {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.inUse -= cap;
    return nullptr;
  }
  if (stats_.poison) std::memset(data, 0xff, cap);
  *capacity = cap;
  return data;
}

void HostPool::release(void* data, size_t capacity) {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.inUse -= capacity;
  idle_[capacity].push_back(Idle{data, ++clock_});
  stats_.idle += capacity;
}

void HostPool::evictOldest() {
  auto oldest = idle_.begin();
  for (auto it = idle_.begin(); it != idle_.end(); ++it)
    if (it->second.front().stamp < oldest->second.front().stamp) oldest = it;
  const size_t cap = oldest->first;
  munmap(oldest->second.front().data, cap);
  oldest->second.pop_front();
  if (oldest->second.empty()) idle_.erase(oldest);
  stats_.idle -= cap;
}

void HostPool::trim() {
  std::lock_guard<std::mutex> lock(mutex_);
  while (!idle_.empty()) evictOldest();
}

HostPool::Stats HostPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace rk
