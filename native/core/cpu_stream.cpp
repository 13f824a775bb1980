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
    StreamFailure failed;
    try {
      task();
    } catch (const KernelFailure& e) {
      failed = {true, e.code(), e.what(), {}};
    } catch (const std::bad_alloc&) {  // (ops name themselves: bindings/op_args.cpp)
      failed = {true, ErrorCode::OutOfMemory, "cpu: out of host memory in a queued task", {}};
    } catch (const std::exception& e) {
      failed = {true, ErrorCode::Internal, e.what(), {}};
    } catch (...) {
      failed = {true, ErrorCode::Internal, "unknown exception in a cpu task", {}};
    }
    // A kernel's report about its inputs (tlp::reportBadTarget): its writers
    // ran within the task, which has returned, so the report is whole. Moved
    // out now, it is this task's, whatever a wait takes later.
    const int32_t code = __atomic_load_n(&slot_.code, __ATOMIC_ACQUIRE);
    if (code != kSlotClear) {
      failed.slot = slot_;
      failed.slot.code = code;
      __atomic_store_n(&slot_.code, static_cast<int32_t>(kSlotClear), __ATOMIC_RELEASE);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const uint64_t ticket = completed_ + 1;  // tasks run in order: this one's
      if ((failed.failed || failed.slot.code != kSlotClear) && failures_.size() < kMaxFailures)
        failures_.emplace_back(ticket, std::move(failed));
      done_.store(++completed_, std::memory_order_release);
    }
    idle_.notify_all();
  }
}

void CpuStream::synchronize() { synchronize(submitted()); }

void CpuStream::synchronize(uint64_t target) {
  if (settleSoon(target)) return;
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [&] { return completed_ >= target; });
}

bool CpuStream::settleSoon() const { return settleSoon(submitted()); }

bool CpuStream::settleSoon(uint64_t ticket) const {
  return spinUntil([&] { return done_.load(std::memory_order_acquire) >= ticket; });
}

uint64_t CpuStream::completed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return completed_;
}

uint64_t CpuStream::submitted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return submitted_;
}

StreamFailure CpuStream::takeFailure(uint64_t upTo) {
  std::lock_guard<std::mutex> lock(mutex_);
  StreamFailure out;
  while (!failures_.empty() && failures_.front().first <= upTo) {
    if (!out.failed && out.slot.code == kSlotClear) out = std::move(failures_.front().second);  // the first wins
    failures_.pop_front();
  }
  return out;
}

}  // namespace rk
