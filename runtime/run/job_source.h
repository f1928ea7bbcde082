// Where the executor's jobs come from and where their results go, as seen from the runtime:
// the launcher turns job files and HTTP requests into JobTickets (runtime/run knows no file
// formats), and writes the outputs and the ledger (JobSink). Rank 0's coordinator calls both
// on one thread; a live source is fed from other threads and does its own locking.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/run/sampling_job.h"

namespace ditrun::runtime {

// A job a source hands out. `prepare` reads what the job needs (conditioning, noise) and
// checks it against the model; it runs on rank 0 just before the job is sent to a group, and
// a ditrun::Error from it fails the job alone.
struct JobTicket {
  std::string id;
  std::string where;   // prefix of the job's error messages ("jobs.jsonl:3: "), or ""
  std::string error;   // non-empty: the job was invalid before it started (recorded failed at once)
  int steps = 0;       // sampler steps, for progress totals
  std::function<SamplingJob()> prepare;
  bool valid() const { return error.empty(); }
};

// What became of a job.
struct JobOutcome {
  std::string id;
  bool done = false;
  std::string error;                 // failed only: one line, the job's prefix included
  double seconds = 0;                // wall time from hand-out to result
  int steps = 0;                     // sampler steps run
  std::vector<std::string> outputs;  // file names, done only
};

class JobSource {
 public:
  virtual ~JobSource() = default;
  // The next job, if one is waiting now; invalid ones are handed out too.
  virtual std::optional<JobTicket> next() = 0;
  // True once next() will never give a job again: a file read through, a server draining.
  virtual bool exhausted() const = 0;
  // A live source: jobs may arrive later, so an empty next() is not the end.
  virtual bool live() const { return false; }
  // Blocks until a job may be waiting or `timeout` passes (live sources; others return).
  virtual void wait_for_jobs(std::chrono::milliseconds timeout) {}
  // Steps of every job this source has given or will give, for progress totals.
  virtual int64_t total_steps() const = 0;

  // What became of a job next() gave: it started on `where` ("rank 1", "ranks 2-3"), it
  // finished step `step` of `steps`, it is over (the sink has recorded it by then).
  virtual void started(const std::string& id, const std::string& where) {}
  virtual void progressed(const std::string& id, int step, int steps) {}
  virtual void finished(const JobOutcome& outcome) {}
  // Device memory of the ranks a step passed through: {"RANK": {device, limit, in_use, peak}}.
  virtual void device_memory(const nlohmann::json& by_rank) {}
};

class JobSink {
 public:
  virtual ~JobSink() = default;
  // Writes a finished job's outputs (all of them or none); returns their file names. `backend`
  // names what rendered it, for the outputs' metadata. A ditrun::Error fails the job.
  virtual std::vector<std::string> write_outputs(const SamplingJob& job, const HostTensor& latent,
                                                 const std::string& backend) = 0;
  // Makes the outcome durable (a ledger line) before the source hears of it.
  virtual void record(const JobOutcome& outcome) = 0;
};

}  // namespace ditrun::runtime
