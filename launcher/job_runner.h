// Runs `ditrun run` jobs on one backend: opens the model once per config, samples each job,
// and writes its outputs (DIR/<id>.safetensors with tensor `latent`, DIR/<id>.png preview)
// and its ledger line. A job that fails is recorded as failed; the runner goes on.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "launcher/job_file.h"
#include "models/pipeline/denoiser.h"
#include "models/pipeline/model_source.h"
#include "runtime/backend/backend.h"
#include "runtime/exec/weight_store.h"

namespace ditrun::launcher {

class Progress;

class JobRunner {
 public:
  // `config` is the run's sidecar (--config); a job's own `config` overrides it.
  JobRunner(std::string model_path, std::optional<std::string> config, runtime::Backend& backend, std::string out_dir);
  ~JobRunner();

  // Sampler steps the job will run (for progress totals); opens the model if needed.
  int steps_of(const Job& job);
  // Samples the job and writes its outputs; returns the output file names (in out_dir).
  // `on_step(step, steps)` after every step. Throws ditrun::Error on any failure, after
  // which no output of this job exists under its final name.
  std::vector<std::string> run(const Job& job, const std::function<void(int, int)>& on_step);

 private:
  struct LoadedModel;
  LoadedModel& model_for(const Job& job);

  std::string model_path_;
  std::optional<std::string> config_;
  runtime::Backend& backend_;
  std::string out_dir_;
  std::map<std::string, std::unique_ptr<LoadedModel>> models_;  // by effective config path ("" = none)
};

}  // namespace ditrun::launcher
