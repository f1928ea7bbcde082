// ComfyUI's samplers for flow models, as ComfyUI computes them (tests/data/comfy-samplers/
// README.md spells out every detail; the data there was made by running ComfyUI's own code).
// They differ from Wan's official solvers beyond first order:
//   dpmpp_2m    k-diffusion's DPM-Solver++(2M) with λ = −log σ (it treats the flow sigma as an
//               EDM sigma, not log((1 − σ)/σ)); first order at the first step and into σ = 0
//   uni_pc      ComfyUI's UniPC (bh1; uni_pc_bh2: bh2): data prediction, order up to 3, its
//               corrector at every step but the last, on a VP view of the sigmas: α = 1/√(1+σ²),
//               std = σ·α, λ = −log σ, y = x/√(1+σ²); a final σ of 0 becomes 0.001 (std and λ
//               there in float32, as ComfyUI evaluates them), and the result is divided by
//               1 − 0.001 as ComfyUI's flow output does
// Each is a pure function of the schedule, the model's velocity and its own history, so a
// step means the same under every layout of ranks.
#pragma once

#include <span>

#include "runtime/core/tensor.h"
#include "runtime/sampling/wan_solvers.h"

namespace ditrun::runtime {

enum class ComfySampler { dpmpp_2m, uni_pc, uni_pc_bh2 };

// Step `step` (0-based): x (the sample the model saw at sigmas[step]) moves to the next sample
// the model sees (after the last step: the result) given the model's velocity v; `history`
// is read and updated. Fails on a shape mismatch, a step outside the schedule, or UniPC with
// fewer than 2 steps.
void comfy_sampler_step(ComfySampler sampler, std::span<const double> sigmas, int step, HostTensor& x,
                        const HostTensor& v, SolverHistory& history);

}  // namespace ditrun::runtime
