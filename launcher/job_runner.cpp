#include "launcher/job_runner.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "launcher/job_sampling.h"
#include "models/pipeline/latent_preview.h"
#include "models/pipeline/network.h"
#include "models/pipeline/noise_file.h"
#include "models/pipeline/tensor_files.h"
#include "runtime/core/error.h"
#include "runtime/sampling/euler.h"
#include "runtime/sampling/noise.h"
#include "runtime/sampling/schedule.h"

namespace ditrun::launcher {

struct JobRunner::LoadedModel {
  models::ModelSource source;
  std::unique_ptr<runtime::Model> network;
  std::unique_ptr<runtime::WeightStore> weights;
  std::unique_ptr<models::Denoiser> denoiser;
  models::Denoiser::NetworkCall call;
  std::optional<partition::Plan> plan;
};

const partition::RankPlan& single_process_rank(const partition::Plan& plan) {
  const int stages = int(std::count_if(plan.ranks.begin(), plan.ranks.end(), [](const auto& r) { return r.group == 0; }));
  if (stages > 1)
    fail("the plan is a {} of {} stages per job ({} ranks in all): run it under mpirun with -np {}; one process runs "
         "only plans whose rank 0 holds the whole model",
         partition::to_string(plan.mode), stages, plan.ranks.size(), plan.ranks.size());
  if (plan.ranks.size() > 1)
    spdlog::warn("the plan has {} replica ranks; this one process runs rank 0's share (mpirun -np {} runs them all)",
                 plan.ranks.size(), plan.ranks.size());
  return plan.ranks.front();
}

JobRunner::JobRunner(std::string model_path, std::optional<std::string> config, runtime::Backend& backend,
                     std::string out_dir, PlanProvider plan_for)
    : model_path_(std::move(model_path)),
      config_(std::move(config)),
      backend_(backend),
      out_dir_(std::move(out_dir)),
      plan_for_(std::move(plan_for)) {}

JobRunner::~JobRunner() = default;

JobRunner::LoadedModel& JobRunner::model_for(const Job& job) {
  const std::optional<std::string> config = job.config ? job.config : config_;
  auto& slot = models_[config.value_or("")];
  if (!slot) {
    auto m = std::make_unique<LoadedModel>();
    m->source = models::open_model(model_path_, config);
    m->network = models::make_network(m->source.config);
    models::check_weights_present(*m->network, *m->source.weights);
    const runtime::WeightStore::FindSource find = [&](const std::string& n) { return m->source.weights->find(n); };
    if (plan_for_) m->plan = plan_for_(m->source, *m->network);
    if (m->plan) {
      const partition::RankPlan& rank = single_process_rank(*m->plan);
      spdlog::info("plan: {} on {}, predicted {:.3f} s per step", partition::to_string(m->plan->mode), rank.device,
                   m->plan->predicted.step_seconds);
      m->weights = std::make_unique<runtime::WeightStore>(backend_, *m->network, find, rank,
                                                          m->plan->host_share_bytes());
    } else {
      m->weights = std::make_unique<runtime::WeightStore>(backend_, *m->network, find);
    }
    m->denoiser = models::make_denoiser(m->source.config);
    m->call = models::local_network(backend_, *m->network, *m->weights);
    spdlog::info("model {}: {} ({} blocks, config {}), {:.1f} MiB of weights on {}", model_path_,
                 m->source.config.variant, m->network->blocks().size(), m->source.config_source,
                 double(m->weights->resident_bytes() + m->weights->streamed_bytes()) / (1 << 20), backend_.name());
    slot = std::move(m);
  }
  return *slot;
}

int JobRunner::steps_of(const Job& job) {
  return int(job.steps.value_or(model_for(job).source.config.sampling.steps));
}

std::vector<std::string> JobRunner::run(const Job& job, const std::function<void(int, int)>& on_step) {
  LoadedModel& m = model_for(job);
  PreparedJob p = prepare_job(job, m.source.config, *m.denoiser);
  spdlog::debug("job {}: latent {}, {} steps, shift {}, guidance {}, cfg {}", job.id, shape_string(p.x.shape),
                p.steps(), p.shift.str(), p.guidance.guidance, p.guidance.cfg);
  HostTensor x = p.x;
  const auto sampling_start = std::chrono::steady_clock::now();
  runtime::euler_sample(
      x, p.sigmas,
      [&](const HostTensor& xs, double sigma, HostTensor& v) { v = m.denoiser->velocity(xs, sigma, p.cond, p.guidance, m.call); },
      [&](int step, int steps) {
        if (!x.all_finite()) fail("the latent is not finite (NaN or Inf) after step {}", step);
        if (on_step) on_step(step, steps);
      });
  const double step_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sampling_start).count() / std::max(p.steps(), 1);
  if (m.plan)
    spdlog::info("job '{}': {:.3f} s per step measured, {:.3f} s predicted by the plan", job.id, step_seconds,
                 m.plan->predicted.step_seconds);
  return write_job_outputs(out_dir_, p, x, m.source.config, backend_.name());
}

}  // namespace ditrun::launcher
