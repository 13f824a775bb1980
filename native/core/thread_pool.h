// A persistent pool of worker threads shared by every CPU stream of the
// process (one per Node.js environment). parallelFor splits [0, n) into
// chunks; the calling thread works too, so progress never depends on a free
// worker. Results must not depend on how chunks land on threads: kernels
// either write disjoint rows, or reduce over a fixed partition (see
// deterministicChunks) and combine partials in index order.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rk {

class ThreadPool {
 public:
  static ThreadPool& global();

  // Threads that run a parallelFor, the caller included (>= 1).
  int threads() const { return threads_.load(); }
  // Resize: `n` total threads (n - 1 workers). Waits for running jobs.
  void setThreads(int n);

  // Calls fn(begin, end) over chunks of about `grain` items covering [0, n).
  template <class Fn>
  void parallelFor(int64_t n, int64_t grain, Fn&& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (n <= grain || threads() == 1) {
      fn(int64_t{0}, n);
      return;
    }
    run(n, grain, [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fn*>(ctx))(b, e); }, &fn);
  }

  ~ThreadPool();

 private:
  struct Job;
  ThreadPool();
  void run(int64_t n, int64_t grain, void (*fn)(void*, int64_t, int64_t), void* ctx);
  void startWorkers(int workers);
  void stopWorkers();
  void workerLoop();
  static void work(Job& job);

  std::atomic<int> threads_{1};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::atomic<int> queued_{0};  // queue_.size(), read without the lock by spinning workers
  std::vector<std::thread> workers_;
  bool stopping_ = false;
  std::mutex resize_;
};

// Threads from RLHF_KERNELS_NUM_THREADS, else the machine's hardware threads.
int defaultThreadCount();
// Why RLHF_KERNELS_NUM_THREADS was not used: "" when unset or valid (an
// integer in [1, 1024]); info() shows it.
std::string threadCountNote();

// Deterministic reduction: fn(begin, end) -> Acc over fixed blocks of
// `block` items (a partition that depends on n only, never on the thread
// count), returned in block order for the caller to combine in that order.
// Sums built this way are bit-identical on any machine size and run.
template <class Acc, class Fn>
std::vector<Acc> blockPartials(int64_t n, int64_t block, Fn&& fn) {
  int64_t blocks = n <= 0 ? 0 : (n + block - 1) / block;
  std::vector<Acc> partials(static_cast<size_t>(blocks));
  ThreadPool::global().parallelFor(blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      int64_t lo = i * block, hi = lo + block < n ? lo + block : n;
      partials[static_cast<size_t>(i)] = fn(lo, hi);
    }
  });
  return partials;
}

}  // namespace rk
