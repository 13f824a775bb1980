#include "cpu_stream.h"

#include <new>
#include <thread>

#include "spin.h"

namespace rk {

CpuStream::CpuStream() : thread_([this] { loop(); }) {}

CpuStream::~CpuStream() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

uint64_t CpuStream::enqueue(std::function<void()> task) {
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
    ticket = ++submitted_;
    queued_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_one();
  return ticket;
}

void CpuStream::throttle() {
  // Tasks waiting, plus at most one running: the common case needs no lock.
  if (queued_.load(std::memory_order_relaxed) + 1 < kMaxQueued) return;
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return submitted_ - completed_ <= kMaxQueued / 2; });
}

void CpuStream::loop() {
  for (;;) {
    std::function<void()> task;
    spinUntil([this] { return queued_.load(std::memory_order_acquire) > 0; });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      // Drain before stopping: pending tasks reference JS memory that the
      // environment frees only after this destructor returns.
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
    }
    try {
      task();
    } catch (const KernelFailure& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_.failed) failure_ = {true, e.code(), e.what(), {}};
    } catch (const std::bad_alloc&) {  // (ops name themselves: bindings/op_args.cpp)
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_.failed) failure_ = {true, ErrorCode::OutOfMemory, "cpu: out of host memory in a queued task", {}};
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_.failed) failure_ = {true, ErrorCode::Internal, e.what(), {}};
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_.failed) failure_ = {true, ErrorCode::Internal, "unknown exception in a cpu task", {}};
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.store(++completed_, std::memory_order_release);
    }
    idle_.notify_all();
  }
}

void CpuStream::synchronize() {
  if (settleSoon()) return;
  std::unique_lock<std::mutex> lock(mutex_);
  const uint64_t target = submitted_;  // only this env's thread enqueues: what settleSoon waited for
  idle_.wait(lock, [&] { return completed_ >= target; });
}

bool CpuStream::settleSoon() const {
  const uint64_t target = submitted();
  return spinUntil([&] { return done_.load(std::memory_order_acquire) >= target; });
}

uint64_t CpuStream::completed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return completed_;
}

uint64_t CpuStream::submitted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return submitted_;
}

StreamFailure CpuStream::takeFailure() {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamFailure out = std::move(failure_);
  failure_ = {};
  // Ops queued after this wait's synchronize may be running and reporting
  // (tlp::reportBadTarget): a report is read once its writer stored the code
  // (a few stores after claiming it), and cleared with release, so that the
  // next claim comes after this read.
  int32_t code = __atomic_load_n(&slot_.code, __ATOMIC_ACQUIRE);
  while (code == kSlotClaimed) {
    std::this_thread::yield();
    code = __atomic_load_n(&slot_.code, __ATOMIC_ACQUIRE);
  }
  if (code != kSlotClear) {
    out.slot = slot_;
    out.slot.code = code;
    __atomic_store_n(&slot_.code, static_cast<int32_t>(kSlotClear), __ATOMIC_RELEASE);
  }
  return out;
}

}  // namespace rk
