// Large host blocks for the storage of cpu tensors, reused across ops.
//
// Why: a fresh output of tens of MB costs more in the OS's first-touch page
// faults (and zeroing) than the kernel that fills it. Blocks handed back are
// kept, by size class, and handed out again as they are: their contents are
// whatever the last user wrote (ops write every element of their outputs).
//
// One pool per process, shared by every Node.js environment (worker
// threads): every method is thread-safe. The pool holds at most limit()
// bytes, in blocks handed out and idle together; past that, acquire()
// returns null and the caller allocates elsewhere (the pool never blocks or
// throws for lack of room). Idle blocks are released least recently
// returned first when room is needed.
//
// $RLHF_KERNELS_HOST_POOL: the limit in MiB (default: 1/8 of the RAM, at
// most 1 GiB); 0 turns the pool off. $RLHF_KERNELS_HUGE_PAGES=0: no block
// is advised huge pages (see mapBlock in host_pool.cpp). $RLHF_KERNELS_HOST_POOL_POISON=1, for
// tests: every block is filled with 0xff bytes (NaN as float32, float16 and
// bfloat16) each time it is handed out, and minBytes() is 0 (every cpu
// tensor comes from the pool), so an output element an op leaves unwritten
// shows.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>

namespace rk {

class HostPool {
 public:
  static HostPool& global();

  // A block of at least `bytes` bytes (page aligned); *capacity receives its
  // size, to be passed back to release(). Null when the pool is off, full,
  // or the OS refuses memory.
  void* acquire(size_t bytes, size_t* capacity);
  void release(void* data, size_t capacity);
  void trim();  // releases every idle block to the OS

  struct Stats {
    size_t inUse = 0;     // bytes of blocks handed out
    size_t idle = 0;      // bytes of blocks waiting for reuse
    size_t limit = 0;     // inUse + idle never exceeds it; 0 = off
    size_t minBytes = 0;  // smaller storage is not worth a block
    size_t hugeFrom = 0;  // blocks this large and up are advised huge pages; 0 = never
    bool poison = false;
  };
  Stats stats() const;

 private:
  HostPool();
  void evictOldest();  // with mutex_ held

  struct Idle {
    void* data;
    uint64_t stamp;  // order of return: the smallest is the least recent
  };
  mutable std::mutex mutex_;
  std::map<size_t, std::deque<Idle>> idle_;  // by capacity; back = most recent
  Stats stats_;
  uint64_t clock_ = 0;
};

}  // namespace rk
