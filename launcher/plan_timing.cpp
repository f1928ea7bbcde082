#include "launcher/plan_timing.h"

#include "launcher/distributed_run.h"
#include "launcher/median_timer.h"
#include "models/pipeline/tensor_files.h"
#include "runtime/core/error.h"
#include "runtime/exec/weight_store.h"
#include "runtime/sampling/noise.h"

namespace ditrun::launcher {

PlanTiming time_plan(const models::ModelSource& source, const runtime::Model& network, const partition::Plan& plan,
                     const Shape& latent, const std::string& cond_path, const runtime::Guidance& guidance,
                     runtime::CpuBackendOptions backend_options, double budget_seconds) {
  const partition::Plan mine = plan_for_ranks(plan, 1);
  const partition::RankPlan& rank = mine.ranks.front();
  if (rank.device != "cpu") fail("time_plan: rank 0 runs on {}, not on the CPU backend", rank.device);
  backend_options.device_memory_bytes = rank.budget_bytes;
  auto backend = runtime::make_cpu_backend(backend_options);
  PlanTiming timing;
  timing.predicted_step_seconds = plan.predicted.step_seconds;
  {
    runtime::WeightStore weights(*backend, network, [&](const std::string& n) { return source.weights->find(n); },
                                 rank, mine.host_share_bytes());
    const auto denoiser = models::make_denoiser(source.config);
    const auto call = models::local_network(*backend, network, weights);
    const runtime::Conditioning cond{models::read_host_tensors(cond_path), cond_path};
    denoiser->check_conditioning(cond, guidance);
    const HostTensor x = runtime::seeded_noise(0, latent);
    denoiser->check_latent(x.shape);
    timing.measured_step_seconds =
        median_seconds_per_call([&] { denoiser->velocity(x, 0.5, cond, guidance, call); }, budget_seconds);
    timing.streamed_bytes = weights.streamed_bytes();
  }
  timing.memory = backend->memory_stats();
  return timing;
}

}  // namespace ditrun::launcher
