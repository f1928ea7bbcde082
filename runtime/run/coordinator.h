// Rank 0's other role in a run: it hands out jobs from a JobSource, one at a time, to
// whichever group leader asks first (so unequal GPUs and unequal jobs balance themselves). A
// leader that asks while a live source has nothing waits until a job arrives (poll()), and is
// told to stop once the source is exhausted. It prepares each job just before sending it
// (conditioning read and checked here, so a bad file fails the job without bothering a
// group), and hands every result to the JobSink (outputs, then the ledger line) from this one
// rank only.
//
// With a model's experts in phases (partition::ExpertStrategy::phases) new jobs go to the
// high-noise groups only; a job whose high-noise steps are over comes back as a handover and
// goes on at a low-noise group, whose leaders wait for handovers and stop once no job can
// bring one any more.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "runtime/run/job_source.h"
#include "runtime/core/progress.h"
#include "transport/channel.h"
#include "transport/tensor_message.h"

namespace ditrun::runtime {

class Coordinator {
 public:
  // `groups`: each group leader's rank and how its ranks read in messages ("rank 1",
  // "ranks 2-3"). `backend`: what renders the jobs, for the outputs' metadata.
  // `predicted_step_seconds` (0: none) is logged beside each job's measured seconds per step.
  // `on_in_flight` hears in_flight() whenever it changes.
  // `low_noise_leaders`: with experts in phases, the leaders of the low-noise groups.
  Coordinator(transport::Channel& channel, JobSource& source, JobSink& sink, std::map<int, std::string> groups,
              std::string backend, double predicted_step_seconds = 0,
              std::function<void(const std::string&)> on_in_flight = {}, std::set<int> low_noise_leaders = {});

  // request, result, progress, done, handover
  void handle(transport::TensorMessage message, int source);
  // Hands jobs that arrived since to leaders that wait for one, and stops waiting leaders once
  // the source is exhausted. Returns whether it sent anything.
  bool poll();
  bool finished() const { return leaders_done_ == leaders_ && results_ == assigned_; }
  size_t failed() const { return failed_; }
  size_t run() const { return handed_out_; }
  // The jobs now being rendered and where: "'a' on rank 1, 'b' on ranks 2-3" (or "none").
  std::string in_flight() const;

 private:
  struct Assigned {
    SamplingJob job;
    std::string where;  // the job's message prefix
    int leader = 0;
    std::chrono::steady_clock::time_point start;
  };
  // Sends `leader` the next job that prepares, or stop when the source is exhausted; returns
  // false when a live source has nothing yet (the leader waits).
  bool serve_request(int leader);
  // A low-noise leader's request: the oldest handover, or stop when no job can bring one any
  // more; false: it waits.
  bool serve_low_noise(int leader);
  void record(const JobOutcome& outcome);
  void update_progress(const std::string& detail);
  void in_flight_changed() const;

  transport::Channel& channel_;
  JobSource& source_;
  JobSink& sink_;
  std::map<int, std::string> groups_;
  std::string backend_;
  double predicted_step_seconds_;
  std::function<void(const std::string&)> on_in_flight_;
  int leaders_ = 0, leaders_done_ = 0;
  size_t handed_out_ = 0, assigned_ = 0, results_ = 0, failed_ = 0;
  int64_t next_index_ = 0;
  std::deque<int> waiting_leaders_;      // asked while a live source had nothing
  struct Handover {
    int64_t index = 0;
    transport::TensorMessage message;  // "step", "x", the history
  };
  std::set<int> low_noise_leaders_;
  std::deque<Handover> handovers_;
  std::deque<int> waiting_low_noise_;    // low-noise leaders waiting for a handover
  std::set<int64_t> in_high_noise_;      // jobs on a high-noise group
  std::map<int64_t, Assigned> running_;  // by job index
  Progress progress_;
  int64_t steps_done_ = 0, steps_dropped_ = 0;  // dropped: steps failed jobs did not run
};

}  // namespace ditrun::runtime
