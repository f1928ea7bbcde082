// Streams and events of the CPU backend. The compute stream is the calling thread: an op runs
// when it is issued, so an event recorded on it is complete at once. Every other stream is a
// worker thread that runs its queue in order (the copy stream of a WeightStore), so copies
// really do overlap compute and "the compute stream waits on an event" really does wait:
// the same logic a GPU's streams follow, exercised on any machine.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace ditrun::runtime {

// A point in a stream's queue; complete once the stream has run everything before it.
class CpuEvent {
 public:
  // `failure`: a task before the event failed; waiters rethrow it instead of using its result.
  void complete(std::exception_ptr failure = nullptr);
  void wait() const;  // rethrows the failure of an earlier task on the stream
  bool done() const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  bool done_ = false;
  std::exception_ptr failure_;
};

class CpuStream {
 public:
  CpuStream();
  ~CpuStream();  // runs what is queued, then joins
  CpuStream(const CpuStream&) = delete;
  CpuStream& operator=(const CpuStream&) = delete;

  void enqueue(std::function<void()> task);
  std::shared_ptr<CpuEvent> record();
  // Blocks until every task queued so far has run; rethrows the first task failure.
  void synchronize();

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::exception_ptr failure_;
  std::thread worker_;
};

}  // namespace ditrun::runtime
