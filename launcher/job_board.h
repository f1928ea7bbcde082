// The jobs of `ditrun serve`: the queue clients add to, what became of every job, and the
// ledger lines that let a restarted server pick up where it stopped. HTTP threads submit,
// read and cancel; the executor takes jobs from it as a live JobLineSource. One mutex guards
// it all: every call is short (the ledger append, one fsync'd line, is the longest).
//
// A job is accepted only once its "queued" line is on disk, so an accepted job is never lost:
// a server that stops (drained, killed, crashed) finds it queued again in the ledger when it
// starts (resume()), and a job that was running then runs again from the start.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "launcher/job_source.h"

namespace ditrun::launcher {

enum class JobState { queued, running, done, failed, cancelled };
std::string_view to_string(JobState state);

// One job as a client sees it.
struct JobStatus {
  std::string id;
  JobState state = JobState::queued;
  size_t position = 0;            // queued: 1 = next to start
  int step = 0, steps = 0;        // steps finished of the job's steps
  std::string where;              // running or over: the ranks that rendered it
  std::string submitted_at, started_at, finished_at;  // ISO-8601 UTC ("" until then)
  double seconds = 0;             // running: since it started; over: its whole run
  double seconds_per_step = 0;    // mean of the steps so far
  std::string error;              // failed only
  std::vector<std::string> outputs;  // done only: file names in the output folder
  nlohmann::json job;             // the job line as accepted
};

// Histogram buckets (seconds) for step and job times in /metrics.
struct TimeHistogram {
  std::vector<double> bounds;     // upper bounds, ascending; +Inf is implied
  std::vector<uint64_t> counts;   // per bound, not cumulative; counts.back() is +Inf
  double sum = 0;
  uint64_t count = 0;
  explicit TimeHistogram(std::vector<double> upper_bounds);
  void add(double seconds);
};

struct BoardCounters {
  size_t queued = 0, running = 0;
  uint64_t submitted = 0, done = 0, failed = 0, cancelled = 0, rejected_full = 0, resumed = 0;
  TimeHistogram step_seconds{{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
  TimeHistogram job_seconds{{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}};
  nlohmann::json device_memory = nlohmann::json::object();  // by rank, as the last step saw it
};

class JobBoard : public JobLineSource {
 public:
  // `out_dir`: where the ledger and outputs live. `max_queued`: the most jobs waiting at once;
  // more are refused (the client retries later). `default_steps`: the model's, for totals.
  // `default_cond`: the built-in model's conditioning, which lives in a folder made anew at
  // every start: ledger lines leave it out, and resume() puts the new one back.
  JobBoard(std::string out_dir, size_t max_queued, int default_steps,
           std::optional<std::string> default_cond = std::nullopt);

  // Reads the ledger: jobs whose last line is "queued" go back on the queue in their order,
  // the others are remembered as done, failed or cancelled. Call once, before serving.
  // Returns how many jobs were queued again.
  size_t resume();

  enum class Submitted { accepted, duplicate_id, queue_full, draining };
  struct SubmitResult {
    Submitted outcome = Submitted::accepted;
    size_t position = 0;  // accepted: place in the queue, 1 = next
  };
  // Queues a valid job; its "queued" ledger line is written first (a failure to write it
  // throws ditrun::Error and nothing is queued). Ids are unique over the ledger's whole life.
  SubmitResult submit(const Job& job);

  std::optional<JobStatus> status(const std::string& id) const;
  // The newest `limit` jobs first; only those in `state` when given.
  std::vector<JobStatus> list(std::optional<JobState> state, size_t limit) const;

  enum class Cancelled { cancelled, unknown, not_queued };
  // Cancels a job that has not started; `state` receives the job's state when it has.
  Cancelled cancel(const std::string& id, JobState* state = nullptr);

  // No more submissions, and no queued job is handed out: running jobs finish, queued ones
  // stay queued in the ledger for the next start.
  void drain();
  bool draining() const;
  BoardCounters counters() const;

  // JobLineSource (the executor's side, through a JobFeed)
  std::optional<JobLine> next() override;
  bool exhausted() const override;
  bool live() const override { return true; }
  void wait_for_jobs(std::chrono::milliseconds timeout) override;
  int64_t total_steps(int default_steps) const override;
  void started(const std::string& id, const std::string& where) override;
  void progressed(const std::string& id, int step, int steps) override;
  void finished(const LedgerEntry& entry) override;
  void device_memory(const nlohmann::json& by_rank) override;

 private:
  struct Record {
    JobStatus status;
    std::optional<Job> job;  // queued and running jobs
    std::chrono::steady_clock::time_point started, last_step;
  };
  JobStatus snapshot(const Record& r) const;  // with position and live seconds filled in
  void remove_uploads(const Record& r) const;
  void forget_old_history();

  std::string out_dir_;
  size_t max_queued_;
  int default_steps_;
  std::optional<std::string> default_cond_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Record> jobs_;        // by id
  std::deque<std::string> queue_;             // queued ids, next first
  std::deque<std::string> history_;           // ids of jobs over, oldest first
  std::set<std::string> ids_ever_;            // every id the ledger knows
  uint64_t order_ = 0;
  std::map<std::string, uint64_t> submitted_order_;  // for list(): newest first
  bool draining_ = false;
  int64_t total_steps_ = 0;                   // of jobs accepted or resumed in this run
  BoardCounters counters_;
};

}  // namespace ditrun::launcher
