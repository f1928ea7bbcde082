#include "runtime/sampling/sampler.h"

#include "runtime/core/error.h"
#include "runtime/sampling/comfy_samplers.h"
#include "runtime/sampling/euler.h"

namespace ditrun::runtime {

std::optional<SamplerKind> sampler_from_name(std::string_view name) {
  if (name == "euler") return SamplerKind::euler;
  if (name == "unipc") return SamplerKind::wan_unipc;
  if (name == "dpm++") return SamplerKind::wan_dpmpp;
  if (name == "dpmpp_2m") return SamplerKind::dpmpp_2m;
  if (name == "uni_pc") return SamplerKind::uni_pc;
  if (name == "uni_pc_bh2") return SamplerKind::uni_pc_bh2;
  return std::nullopt;
}

bool is_wan_solver(SamplerKind kind) { return kind == SamplerKind::wan_unipc || kind == SamplerKind::wan_dpmpp; }
bool is_comfy_unipc(SamplerKind kind) { return kind == SamplerKind::uni_pc || kind == SamplerKind::uni_pc_bh2; }

void sampler_step(SamplerKind kind, std::span<const double> sigmas, int step, HostTensor& x, const HostTensor& v,
                  SolverHistory& history) {
  const int steps = int(sigmas.size()) - 1;
  if (step < 0 || step >= steps) fail("sampler: step {} outside a schedule of {} steps", step, steps);
  switch (kind) {
    case SamplerKind::euler:
      if (x.shape != v.shape) fail("sampler: velocity {} is not the sample's shape {}", shape_string(v.shape), shape_string(x.shape));
      return euler_step(x, v, sigmas[size_t(step)], sigmas[size_t(step) + 1]);
    case SamplerKind::wan_unipc: return wan_solver_step(WanSolver::unipc, sigmas, step, x, v, history);
    case SamplerKind::wan_dpmpp: return wan_solver_step(WanSolver::dpmpp, sigmas, step, x, v, history);
    case SamplerKind::dpmpp_2m: return comfy_sampler_step(ComfySampler::dpmpp_2m, sigmas, step, x, v, history);
    case SamplerKind::uni_pc: return comfy_sampler_step(ComfySampler::uni_pc, sigmas, step, x, v, history);
    case SamplerKind::uni_pc_bh2: return comfy_sampler_step(ComfySampler::uni_pc_bh2, sigmas, step, x, v, history);
  }
}

}  // namespace ditrun::runtime
