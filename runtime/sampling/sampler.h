// Every sampler a job may name, under the names users know them by, and the one step
// function the executor calls whatever the sampler:
//   euler                 flow Euler (BFL's Flux loop, ComfyUI's euler)
//   unipc, dpm++          Wan's official solvers (wan_solvers.h)
//   dpmpp_2m, uni_pc,     ComfyUI's (comfy_samplers.h)
//   uni_pc_bh2
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "runtime/core/tensor.h"
#include "runtime/sampling/wan_solvers.h"

namespace ditrun::runtime {

enum class SamplerKind { euler, wan_unipc, wan_dpmpp, dpmpp_2m, uni_pc, uni_pc_bh2 };

inline constexpr std::string_view kSamplerNames = "euler, unipc, dpm++, dpmpp_2m, uni_pc, uni_pc_bh2";

std::optional<SamplerKind> sampler_from_name(std::string_view name);

// ComfyUI's samplers (and euler, which ComfyUI's matches) give the model 1000·σ; Wan's give it
// the official integer timestep of their schedule.
bool is_wan_solver(SamplerKind kind);
// ComfyUI's KSampler node gives UniPC one step more and drops the second-to-last sigma.
bool is_comfy_unipc(SamplerKind kind);

// Step `step` (0-based) of `sigmas`: x, the sample the model saw, moves to the next one (after
// the last step, the result) given the model's velocity v; `history` carries a multistep
// sampler's state from one step to the next (a fresh one at step 0).
void sampler_step(SamplerKind kind, std::span<const double> sigmas, int step, HostTensor& x, const HostTensor& v,
                  SolverHistory& history);

}  // namespace ditrun::runtime
