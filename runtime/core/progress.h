// Progress for long work (tensors written, blocks, jobs): a redrawn status line with rate and
// ETA on a terminal; on a pipe or log file, a plain log line at most every few seconds.
#pragma once

#include <chrono>
#include <string>

namespace ditrun {

class Progress {
 public:
  Progress(std::string what, std::string unit);
  ~Progress();
  // `done` of `total` units finished; `detail` names the current item.
  void update(size_t done, size_t total, const std::string& detail = "");
  void finish(const std::string& summary);

 private:
  std::string what_, unit_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_print_;
};

std::string format_duration(double seconds);  // "1m05s"

}  // namespace ditrun
