// ComfyUI's schedulers for flow models (ModelSamplingDiscreteFlow, multiplier 1000), as
// ComfyUI computes them, float32 included (tests/data/comfy-samplers/README.md spells out
// every detail; the data there was made by running ComfyUI's own code):
//   simple       every (1000/N)-th entry of the model's 1000-entry sigma table from the top
//   normal       N timesteps evenly spaced from 1000·σ_max to 1000·σ_min, each turned back
//                into a sigma (which shifts a second time, as ComfyUI does)
//   sgm_uniform  the first N of normal's N + 1
//   beta         table entries at the Beta(0.6, 0.6) quantiles of 1 − i/N (repeats dropped)
// The table is shift(k/1000), k = 1..1000, shift(t) = S·t / (1 + (S − 1)·t). Every schedule
// ends with 0. ComfyUI's KSampler node gives UniPC (uni_pc, uni_pc_bh2) an (N + 1)-step
// schedule without its second-to-last sigma; `for_unipc` does the same.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace ditrun::runtime {

enum class ComfyScheduler { simple, normal, beta, sgm_uniform };

// "simple", "normal", "beta", "sgm_uniform"; nullopt for other names.
std::optional<ComfyScheduler> comfy_scheduler_from_name(std::string_view name);

// steps + 1 sigmas (fewer for beta when quantiles repeat), the last 0. Fails on steps < 1 or a
// shift that is not positive.
std::vector<double> comfy_sigmas(ComfyScheduler scheduler, int steps, double shift, bool for_unipc = false);

// The Beta(a, b) distribution's quantile function (the inverse of the regularized incomplete
// beta function), to double precision; what ComfyUI's beta scheduler takes from scipy.
double beta_quantile(double p, double a, double b);

}  // namespace ditrun::runtime
