// Rank 0's other job in a distributed run: it hands out jobs, one at a time, to whichever
// group leader asks first (so unequal GPUs and unequal jobs balance themselves), prepares
// each job just before (conditioning read and checked here, so a bad file fails the job
// without bothering a group), and writes every result: outputs and ledger line, as the
// single-process run does, from this one rank only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "launcher/job_file.h"
#include "launcher/job_sampling.h"
#include "launcher/ledger.h"
#include "launcher/progress.h"
#include "transport/channel.h"
#include "transport/tensor_message.h"

namespace ditrun::launcher {

class Coordinator {
 public:
  // `todo`: the job lines to run, in order (invalid lines are recorded as failed at once).
  // `groups`: each group leader's rank and how its ranks read in messages ("rank 1",
  // "ranks 2-3"). `on_in_flight` hears in_flight() whenever it changes.
  Coordinator(transport::Channel& channel, std::vector<JobLine> todo, std::string jobs_file, std::string out_dir,
              const arch::ModelConfig& config, std::string backend_name, std::map<int, std::string> groups,
              std::function<void(const std::string&)> on_in_flight = {});

  // request, result, progress, done
  void handle(transport::TensorMessage message, int source);
  bool finished() const { return leaders_done_ == leaders_ && results_ == assigned_; }
  size_t failed() const { return failed_; }
  size_t run() const { return todo_.size(); }
  // The jobs now being rendered and where: "'a' on rank 1, 'b' on ranks 2-3" (or "none").
  std::string in_flight() const;

 private:
  struct Assigned {
    PreparedJob job;
    int leader = 0;
    std::chrono::steady_clock::time_point start;
  };
  void on_request(int leader);
  void record(const LedgerEntry& entry);
  void in_flight_changed() const;

  transport::Channel& channel_;
  std::vector<JobLine> todo_;
  std::string jobs_file_, out_dir_;
  arch::ModelConfig config_;
  std::unique_ptr<models::Denoiser> denoiser_;
  std::string backend_name_;
  std::map<int, std::string> groups_;
  std::function<void(const std::string&)> on_in_flight_;
  int leaders_ = 0, leaders_done_ = 0;
  size_t next_ = 0, assigned_ = 0, results_ = 0, failed_ = 0;
  std::map<int64_t, Assigned> running_;  // by index into todo_
  Progress progress_;
  int64_t total_steps_ = 0, steps_done_ = 0;
};

}  // namespace ditrun::launcher
