// The cpu device's ordered stream: one per Node.js environment (main thread
// or worker). Ops enqueue tasks that run, in call order, on a thread of their
// own, each task free to use the shared ThreadPool. Tickets count tasks, so
// JS can tell which inputs are still referenced by pending work.
//
// A task that throws, or whose kernel reports a bad input (the error slot),
// does not stop the stream: the failure is kept with the task's ticket and
// reported by the first wait that covers that ticket (and cleared then), as
// CUDA would; a wait covering several reports the first.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "errors.h"

namespace rk {

struct StreamFailure {
  bool failed = false;
  ErrorCode code = ErrorCode::Internal;
  std::string message;
  ErrorSlot slot{};  // a kernel's report about its inputs
};

class CpuStream {
 public:
  CpuStream();
  ~CpuStream();  // drains the queue, then joins
  CpuStream(const CpuStream&) = delete;
  CpuStream& operator=(const CpuStream&) = delete;

  uint64_t enqueue(std::function<void()> task);  // returns the task's ticket
  // Backpressure for ops, as CUDA's launch queue gives: before a task that
  // would make kMaxQueued + 1 waiting or running, blocks until at most half
  // of kMaxQueued remain, so a
  // caller that never waits cannot queue (and hold the outputs of) work
  // without bound.
  static constexpr uint64_t kMaxQueued = 256;
  void throttle();
  void synchronize();                 // blocks until every enqueued task ran
  void synchronize(uint64_t ticket);  // blocks until the tasks up to `ticket` ran
  // Spins at most the spin budget (spin.h); true when every task enqueued
  // so far has run by then. Never blocks.
  bool settleSoon() const;
  bool settleSoon(uint64_t ticket) const;  // the same for the tasks up to `ticket`
  uint64_t completed() const;         // highest ticket finished
  uint64_t submitted() const;
  // Moves out the failures of the tasks up to `upTo` (after a synchronize
  // that covers them) and returns the first; later tasks' stay.
  StreamFailure takeFailure(uint64_t upTo = UINT64_MAX);
  ErrorSlot* errorSlot() { return &slot_; }

 private:
  void loop();

  mutable std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::deque<std::function<void()>> queue_;
  uint64_t submitted_ = 0, completed_ = 0;
  // Lock-free mirrors for the short spins before blocking (spin.h).
  std::atomic<uint64_t> queued_{0}, done_{0};
  bool stopping_ = false;
  static constexpr size_t kMaxFailures = 1024;  // kept until waited for; more are dropped
  std::deque<std::pair<uint64_t, StreamFailure>> failures_;  // (ticket, failure), in ticket order
  ErrorSlot slot_{};
  std::thread thread_;
};

}  // namespace rk
