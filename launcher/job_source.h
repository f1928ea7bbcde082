// Where a run's job lines come from, and who hears what becomes of them. `ditrun run` hands
// out the lines of a job file (JobListSource); `ditrun serve` hands out jobs as clients submit
// them (launcher/job_board.h). launcher/job_feed.h turns either into the executor's
// runtime::JobSource; the executor calls these on one thread, and a live source is fed from
// others and does its own locking.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "launcher/job_file.h"
#include "launcher/ledger.h"

namespace ditrun::launcher {

class JobLineSource {
 public:
  virtual ~JobLineSource() = default;
  // The next job to hand out, if one is waiting now; an invalid line is handed out too (the
  // coordinator records it as failed).
  virtual std::optional<JobLine> next() = 0;
  // True once next() will never give a job again: a file read through, a server draining.
  virtual bool exhausted() const = 0;
  // A live source: jobs may arrive later, so an empty next() is not the end.
  virtual bool live() const { return false; }
  // Blocks until a job may be waiting or `timeout` passes (live sources; others return).
  virtual void wait_for_jobs(std::chrono::milliseconds timeout) {}
  // Steps of every job this source has given or will give, for progress totals.
  virtual int64_t total_steps(int default_steps) const = 0;

  // What became of a job next() gave: it started on `where` ("rank 1", "ranks 2-3"), it
  // finished step `step` of `steps` (`seconds` since it started), it is over (the ledger
  // line is written before this is called).
  virtual void started(const std::string& id, const std::string& where) {}
  virtual void progressed(const std::string& id, int step, int steps) {}
  virtual void finished(const LedgerEntry& entry) {}
  // Device memory of the ranks a step passed through: {"RANK": {device, limit, in_use, peak}}.
  virtual void device_memory(const nlohmann::json& by_rank) {}
};

// The lines of a job file (or the one job from flags), in order.
class JobListSource : public JobLineSource {
 public:
  explicit JobListSource(std::vector<JobLine> lines) : lines_(std::move(lines)) {}
  std::optional<JobLine> next() override {
    if (next_ == lines_.size()) return std::nullopt;
    return lines_[next_++];
  }
  bool exhausted() const override { return next_ == lines_.size(); }
  int64_t total_steps(int default_steps) const override {
    int64_t total = 0;
    for (const JobLine& l : lines_)
      if (l.ok()) total += l.job->steps.value_or(default_steps);
    return total;
  }

 private:
  std::vector<JobLine> lines_;
  size_t next_ = 0;
};

}  // namespace ditrun::launcher
