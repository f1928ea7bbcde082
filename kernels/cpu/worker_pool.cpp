// The process-wide worker pool behind detail::run_tasks (see cpu_common.h for why a pool).
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "kernels/cpu/cpu_common.h"
#include "runtime/core/parallel.h"

namespace ditrun::kernels::cpu::detail {
namespace {

class WorkerPool {
 public:
  explicit WorkerPool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { work(i); });
  }
  ~WorkerPool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void run(int threads, int64_t n, const std::function<void(int64_t)>& task) {
    const int64_t helpers = std::min<int64_t>({int64_t(threads) - 1, int64_t(threads_.size()), n - 1});
    // One job at a time; a compare-exchange rather than a mutex so that a nested call from
    // the thread that holds the pool is refused rather than deadlocking.
    bool idle = false;
    if (helpers <= 0 || !busy_.compare_exchange_strong(idle, true)) {
      for (int64_t i = 0; i < n; ++i) task(i);
      return;
    }
    {
      std::lock_guard lock(mutex_);
      task_ = &task;
      n_ = n;
      next_.store(0);
      wanted_ = int(helpers);
      active_ = int(helpers);
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    drain();
    std::exception_ptr error;
    {
      std::unique_lock lock(mutex_);
      done_.wait(lock, [&] { return active_ == 0; });
      task_ = nullptr;
      error = error_;
    }
    busy_.store(false);
    if (error) std::rethrow_exception(error);
  }

 private:
  void work(int index) {
    uint64_t seen = 0;
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (index >= wanted_) continue;  // this job needs fewer helpers
      lock.unlock();
      drain();
      lock.lock();
      if (--active_ == 0) done_.notify_one();
    }
  }

  // Takes items until none are left; the first exception is kept for the caller.
  void drain() {
    for (int64_t i = next_.fetch_add(1); i < n_; i = next_.fetch_add(1)) {
      try {
        (*task_)(i);
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  std::atomic<bool> busy_{false};
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  int wanted_ = 0, active_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

}  // namespace

void run_tasks(int threads, int64_t n, const std::function<void(int64_t)>& task) {
  // Created on first use with one worker per core besides the caller.
  static WorkerPool pool(int(host_threads()) - 1);
  pool.run(threads, n, task);
}

}  // namespace ditrun::kernels::cpu::detail
