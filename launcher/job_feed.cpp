#include "launcher/job_feed.h"

#include <fmt/format.h>

#include <filesystem>

namespace ditrun::launcher {
namespace {

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::equivalent(a, b, ec);
}

}  // namespace

LedgerEntry ledger_entry(const runtime::JobOutcome& o) {
  LedgerEntry entry;
  entry.id = o.id;
  entry.status = o.done ? LedgerStatus::done : LedgerStatus::failed;
  entry.error = o.error;
  entry.seconds = o.seconds;
  entry.steps = o.steps;
  entry.outputs = o.outputs;
  return entry;
}

JobFeed::JobFeed(JobLineSource& lines, std::string jobs_file, std::string out_dir, const arch::ModelConfig& config,
                 const models::Denoiser& denoiser, std::optional<std::string> run_config, RunVae* decoder,
                 bool preview, RunEncoders* encoders, std::string encoders_error)
    : lines_(lines),
      jobs_file_(std::move(jobs_file)),
      out_dir_(std::move(out_dir)),
      config_(config),
      denoiser_(denoiser),
      run_config_(std::move(run_config)),
      decoder_(decoder),
      preview_(preview),
      encoders_(encoders),
      encoders_error_(std::move(encoders_error)) {}

std::optional<runtime::JobTicket> JobFeed::next() {
  std::optional<JobLine> line = lines_.next();
  if (!line) return std::nullopt;
  runtime::JobTicket ticket;
  if (!line->ok()) {
    ticket.id = line->id;
    ticket.error = line->error;
    return ticket;
  }
  const Job& job = *line->job;
  ticket.id = job.id;
  ticket.where = jobs_file_.empty() ? "" : fmt::format("{}:{}: ", jobs_file_, job.line);
  ticket.steps = int(job.steps.value_or(config_.sampling.steps));
  if (job.config && !(run_config_ && same_file(*job.config, *run_config_))) {
    ticket.error = fmt::format("{}job '{}': a job's own 'config' needs a single-process run (every rank of an "
                               "mpirun run loads the run's model and --config)",
                               ticket.where, job.id);
    return ticket;
  }
  if (job.image && !decoder_ && image_use(config_) == ImageUse::picture) {
    ticket.error = fmt::format("{}job '{}': image '{}' needs a VAE to encode it (run with --vae FILE)", ticket.where,
                               job.id, *job.image);
    return ticket;
  }
  if (job.output && *job.output != "latent" && !decoder_) {
    ticket.error = fmt::format("{}job '{}': output '{}' needs a VAE to decode the latent (run with --vae FILE)",
                               ticket.where, job.id, *job.output);
    return ticket;
  }
  {
    std::lock_guard lock(requests_mutex_);
    requests_[job.id] = {job.output.value_or(""), job.fps};
  }
  if (job.prompt && !encoders_) {
    ticket.error =
        !encoders_error_.empty()
            ? fmt::format("{}job '{}': prompt: {}", ticket.where, job.id, encoders_error_)
            : fmt::format("{}job '{}': {}", ticket.where, job.id, missing_encoders_message(config_));
    return ticket;
  }
  ticket.prepare = [this, job] { return prepare_job(job, config_, denoiser_, decoder_, encoders_); };
  return ticket;
}

std::vector<std::string> JobFeed::write_outputs(const runtime::SamplingJob& job, const HostTensor& latent,
                                                const std::string& backend) {
  JobPictures pictures{decoder_, preview_, "", std::nullopt};
  {
    std::lock_guard lock(requests_mutex_);
    if (auto it = requests_.find(job.id); it != requests_.end()) {
      std::tie(pictures.output, pictures.fps) = it->second;
      requests_.erase(it);
    }
  }
  return write_job_outputs(out_dir_, job, latent, config_, backend, pictures);
}

void JobFeed::record(const runtime::JobOutcome& outcome) {
  {
    std::lock_guard lock(requests_mutex_);  // a job that failed before its outputs
    requests_.erase(outcome.id);
  }
  LedgerEntry entry = ledger_entry(outcome);
  if (decoder_ && outcome.done) entry.vae = decoder_->name();
  append_ledger(out_dir_, entry);
}

}  // namespace ditrun::launcher
