// The flow-matching Euler sampler (models.md §0.4): the network predicts a velocity
// v ≈ ε − x0 at noise level σ, and one step moves the latent along it,
//   x_{σ_next} = x_σ + (σ_next − σ)·v.
// This is the whole sampler of BFL's Flux `denoise` and ComfyUI's `euler` for flow models.
// The velocity function hides how v is computed (one forward, two for CFG, a pipeline of
// ranks), so the update itself stays a few lines that every rank layout shares.
#pragma once

#include <functional>
#include <span>

#include "runtime/core/tensor.h"

namespace ditrun::runtime {

// Writes the velocity at (x, sigma) into v. v arrives shaped like x (its contents are the
// previous step's and may be overwritten); it must leave with x's shape.
using VelocityFn = std::function<void(const HostTensor& x, double sigma, HostTensor& v)>;

// Runs sigmas.size() − 1 Euler steps on x in place, calling `velocity` once per step and
// then on_step(step, steps) with step = 1..steps. Fails if there are fewer than two sigmas
// or the velocity comes back with another shape. Each element is updated in double and
// rounded once to float.
void euler_sample(HostTensor& x, std::span<const double> sigmas, const VelocityFn& velocity,
                  const std::function<void(int step, int steps)>& on_step = {});

// One step: x += (sigma_next − sigma)·v, each element in double, rounded once to float. What
// euler_sample does per step, for executors that run the step loop themselves (pipelines).
void euler_step(HostTensor& x, const HostTensor& v, double sigma, double sigma_next);

// Classifier-free guidance: out = uncond + scale·(cond − uncond), in float as the reference
// implementations compute it. out may be one of the inputs. Fails on a shape mismatch.
void cfg_combine(const HostTensor& cond, const HostTensor& uncond, double scale, HostTensor& out);

// The x0 estimate at (x, σ) from a velocity: x − σ·v (ComfyUI `CONST.calculate_denoised`),
// what latent previews show. Fails on a shape mismatch.
HostTensor denoised(const HostTensor& x, double sigma, const HostTensor& v);

}  // namespace ditrun::runtime
