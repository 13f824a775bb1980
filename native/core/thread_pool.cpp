#include "thread_pool.h"

#include "spin.h"

#include <cstdlib>
#include <string>

namespace rk {

struct ThreadPool::Job {
  void (*fn)(void*, int64_t, int64_t);
  void* ctx;
  int64_t n, chunk, chunks;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mutex;
  std::condition_variable finished;
  std::exception_ptr error;
};

namespace {

int hardwareThreads() {
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// RLHF_KERNELS_NUM_THREADS as a whole decimal integer in [1, 1024], else 0.
int threadsFromEnv(const char* env) {
  char* end = nullptr;
  const long n = std::strtol(env, &end, 10);
  return end != env && *end == '\0' && n >= 1 && n <= 1024 ? static_cast<int>(n) : 0;
}

}  // namespace

int defaultThreadCount() {
  const char* env = std::getenv("RLHF_KERNELS_NUM_THREADS");
  const int n = env && *env ? threadsFromEnv(env) : 0;
  return n > 0 ? n : hardwareThreads();
}

std::string threadCountNote() {
  const char* env = std::getenv("RLHF_KERNELS_NUM_THREADS");
  if (!env || !*env || threadsFromEnv(env) > 0) return "";
  return std::string("RLHF_KERNELS_NUM_THREADS=") + env + " is not an integer in [1, 1024]; using the " +
         std::to_string(hardwareThreads()) + " hardware threads";
}

ThreadPool& ThreadPool::global() {
  // Leaked on purpose: workers must not be joined from a static destructor
  // that runs while another thread may still be inside a job.
  static ThreadPool* pool = new ThreadPool();
  return *pool;
}

ThreadPool::ThreadPool() {
  int n = defaultThreadCount();
  threads_ = n;
  startWorkers(n - 1);
}

ThreadPool::~ThreadPool() { stopWorkers(); }

void ThreadPool::startWorkers(int workers) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
  }
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { workerLoop(); });
}

void ThreadPool::stopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::setThreads(int n) {
  if (n < 1) n = 1;
  std::lock_guard<std::mutex> guard(resize_);
  stopWorkers();  // workers finish the chunk in hand; callers finish the rest
  threads_ = n;
  startWorkers(n - 1);
}

// Claims chunks of `job` until none is left.
void ThreadPool::work(Job& job) {
  for (;;) {
    int64_t i = job.next.fetch_add(1);
    if (i >= job.chunks) return;
    int64_t b = i * job.chunk;
    int64_t e = b + job.chunk < job.n ? b + job.chunk : job.n;
    try {
      job.fn(job.ctx, b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lock(job.mutex);
      if (!job.error) job.error = std::current_exception();
    }
    if (job.done.fetch_add(1) + 1 == job.chunks) {
      std::lock_guard<std::mutex> lock(job.mutex);
      job.finished.notify_all();
    }
  }
}

void ThreadPool::workerLoop() {
  for (;;) {
    std::shared_ptr<Job> job;
    spinUntil([this] { return queued_.load(std::memory_order_acquire) > 0; });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = queue_.front();
      // Everything handed out: later arrivals need not see this job.
      if (job->next.load() >= job->chunks) {
        queue_.pop_front();
        queued_.fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
    }
    work(*job);
  }
}

void ThreadPool::run(int64_t n, int64_t grain, void (*fn)(void*, int64_t, int64_t), void* ctx) {
  auto job = std::make_shared<Job>();
  job->fn = fn;
  job->ctx = ctx;
  job->n = n;
  // At most a few chunks per thread: enough for balance, few enough to be cheap.
  int64_t maxChunks = static_cast<int64_t>(threads()) * 4;
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks > maxChunks) chunks = maxChunks;
  job->chunk = (n + chunks - 1) / chunks;
  job->chunks = (n + job->chunk - 1) / job->chunk;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(job);
    queued_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  work(*job);
  if (!spinUntil([&] { return job->done.load() == job->chunks; })) {
    std::unique_lock<std::mutex> lock(job->mutex);
    job->finished.wait(lock, [&] { return job->done.load() == job->chunks; });
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
      if (*it == job) {
        queue_.erase(it);
        queued_.fetch_sub(1, std::memory_order_relaxed);
        break;
      }
  }
  if (job->error) std::rethrow_exception(job->error);
}

}  // namespace rk
