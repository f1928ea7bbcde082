// The launcher's side of a run as the executor sees it: job lines (a job file, or a server's
// board) become runtime::JobTickets whose prepare() reads the conditioning and noise, and
// finished jobs become output files and ledger lines in the run's folder.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "launcher/job_sampling.h"
#include "launcher/job_source.h"
#include "launcher/ledger.h"
#include "runtime/run/job_source.h"

namespace ditrun::launcher {

// The ledger line of a job's outcome.
LedgerEntry ledger_entry(const runtime::JobOutcome& outcome);

class JobFeed : public runtime::JobSource, public runtime::JobSink {
 public:
  // `jobs_file` prefixes job errors ("jobs.jsonl:3: "; "" for none). `run_config`: the run's
  // --config; a job line that asks for another config fails (every rank loads one model).
  // Holds references to `lines`, `config` and `denoiser`.
  // `decoder` (may be null: no VAE) turns final latents into pictures; `preview` asks for
  // the latent preview beside them; `encoders` (may be null) encode jobs' prompts, and
  // `encoders_error` says why there are none when they were asked for.
  JobFeed(JobLineSource& lines, std::string jobs_file, std::string out_dir, const arch::ModelConfig& config,
          const models::Denoiser& denoiser, std::optional<std::string> run_config, RunVae* decoder = nullptr,
          bool preview = false, RunEncoders* encoders = nullptr, std::string encoders_error = "");

  // runtime::JobSource
  std::optional<runtime::JobTicket> next() override;
  bool exhausted() const override { return lines_.exhausted(); }
  bool live() const override { return lines_.live(); }
  void wait_for_jobs(std::chrono::milliseconds timeout) override { lines_.wait_for_jobs(timeout); }
  int64_t total_steps() const override { return lines_.total_steps(config_.sampling.steps); }
  void started(const std::string& id, const std::string& where) override { lines_.started(id, where); }
  void progressed(const std::string& id, int step, int steps) override { lines_.progressed(id, step, steps); }
  void finished(const runtime::JobOutcome& outcome) override { lines_.finished(ledger_entry(outcome)); }
  void device_memory(const nlohmann::json& by_rank) override { lines_.device_memory(by_rank); }

  // runtime::JobSink: DIR/<id>.safetensors + DIR/<id>.png (or .mp4), then DIR/ledger.jsonl.
  std::vector<std::string> write_outputs(const runtime::SamplingJob& job, const HostTensor& latent,
                                         const std::string& backend) override;
  void record(const runtime::JobOutcome& outcome) override;

 private:
  JobLineSource& lines_;
  std::string jobs_file_, out_dir_;
  const arch::ModelConfig& config_;
  const models::Denoiser& denoiser_;
  std::optional<std::string> run_config_;
  RunVae* decoder_;
  bool preview_;
  RunEncoders* encoders_;  // a job's prompts (may be null: such jobs fail)
  std::string encoders_error_;
  // Each job's picture choices, from next() until its outputs are written.
  std::mutex requests_mutex_;
  std::map<std::string, std::pair<std::string, std::optional<double>>> requests_;  // id → (output, fps)
};

}  // namespace ditrun::launcher
