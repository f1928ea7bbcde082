#include "runtime/backend/cpu_stream.h"

namespace ditrun::runtime {

void CpuEvent::complete(std::exception_ptr failure) {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
    failure_ = failure;
  }
  cv_.notify_all();
}

void CpuEvent::wait() const {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return done_; });
  if (failure_) std::rethrow_exception(failure_);
}

bool CpuEvent::done() const {
  std::lock_guard lock(mutex_);
  return done_;
}

CpuStream::CpuStream() : worker_([this] { run(); }) {}

CpuStream::~CpuStream() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void CpuStream::enqueue(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_all();
}

std::shared_ptr<CpuEvent> CpuStream::record() {
  auto event = std::make_shared<CpuEvent>();
  enqueue([this, event] {
    std::exception_ptr failure;
    {
      std::lock_guard lock(mutex_);
      failure = failure_;
    }
    event->complete(failure);
  });
  return event;
}

void CpuStream::synchronize() { record()->wait(); }

void CpuStream::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      task();
    } catch (...) {
      // Later tasks still run, so every event completes and nobody waits forever; each event
      // after the failure carries it to its waiters. The stream stays failed.
      std::lock_guard lock(mutex_);
      if (!failure_) failure_ = std::current_exception();
    }
  }
}

}  // namespace ditrun::runtime
