// Runs `ditrun run` jobs on one backend: opens the model once per config, samples each job,
// and writes its outputs (DIR/<id>.safetensors with tensor `latent`, DIR/<id>.png preview)
// and its ledger line. A job that fails is recorded as failed; the runner goes on.
//
// Weights go where a plan says (partition/plan.h): the provider is asked once per loaded model;
// without a provider, or when it returns no plan, every weight is resident.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "launcher/job_file.h"
#include "models/pipeline/denoiser.h"
#include "models/pipeline/model_source.h"
#include "partition/plan.h"
#include "runtime/backend/backend.h"
#include "runtime/exec/weight_store.h"

namespace ditrun::launcher {

class Progress;

using PlanProvider =
    std::function<std::optional<partition::Plan>(const models::ModelSource& source, const runtime::Model& network)>;

// The rank of `plan` a single process runs: rank 0, when its group renders a job alone (one
// stage). A plan that splits a job over several ranks fails, naming the ranks it needs.
const partition::RankPlan& single_process_rank(const partition::Plan& plan);

class JobRunner {
 public:
  // `config` is the run's sidecar (--config); a job's own `config` overrides it.
  JobRunner(std::string model_path, std::optional<std::string> config, runtime::Backend& backend, std::string out_dir,
            PlanProvider plan_for = {});
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
  PlanProvider plan_for_;
  std::map<std::string, std::unique_ptr<LoadedModel>> models_;  // by effective config path ("" = none)
};

}  // namespace ditrun::launcher
