// Flow-matching sigma schedules (models.md §0.4, §1.6, §2.7): a uniform grid of "times"
// t = linspace(1, 0, steps + 1), bent by a shift so that more steps fall at high noise.
// Every model in ditrun samples on such a grid; only the shift differs:
//   - none:          σ = t                                  (Flux schnell)
//   - constant s:    σ = s·t / (1 + (s − 1)·t)              (SD3 / Wan "time_snr_shift")
//   - flux-dynamic:  σ = e^μ / (e^μ + (1/t − 1)), with μ growing linearly with the image
//                    token count (BFL `get_schedule`); the same curve as constant s = e^μ.
//   - qwen-dynamic:  Qwen-Image's released scheduler config (diffusers'
//                    FlowMatchEulerDiscreteScheduler): the same exponential shift with μ from
//                    0.5 at 256 to 0.9 at 8192 tokens, then the shifted grid stretched so
//                    that its last non-zero sigma is exactly 0.02 (shift_terminal), in f32
//                    as the official pipeline computes it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ditrun::runtime {

struct Shift {
  enum Kind { None, Constant, FluxDynamic, QwenDynamic };
  Kind kind = None;
  double value = 1.0;  // the constant s; meaningful for Constant only

  static Shift none() { return {}; }
  static Shift constant(double s);  // fails unless s is finite and > 0
  static Shift flux_dynamic() { return {FluxDynamic, 1.0}; }
  static Shift qwen_dynamic() { return {QwenDynamic, 1.0}; }
  bool dynamic() const { return kind == FluxDynamic || kind == QwenDynamic; }

  // "none", "flux-dynamic", "qwen-dynamic", or a positive number ("5", "5.0", "3.16"). The spellings are
  // those of SamplingDefaults::shift and of job files. Fails with one line otherwise.
  static Shift parse(std::string_view text);
  // Inverse of parse: "none", "flux-dynamic", "qwen-dynamic", or the number in shortest round-trip form.
  std::string str() const;

  bool operator==(const Shift&) const = default;
};

// BFL `get_schedule` with its defaults (base 0.5 at 256 tokens, max 1.15 at 4096 tokens):
// μ = 0.5 + (1.15 − 0.5)/(4096 − 256)·(image_tokens − 256). Not clamped, as in BFL.
double flux_dynamic_mu(int64_t image_tokens);

// diffusers `calculate_shift` with Qwen-Image's config: μ = 0.5 + (0.9 − 0.5)/(8192 − 256)·(image_tokens − 256).
double qwen_dynamic_mu(int64_t image_tokens);

// σ for one grid time t ∈ [0, 1] under `shift`; t = 0 maps to 0 and t = 1 to 1.
// `image_tokens` (per batch item, after patching) is used by the dynamic shifts only. For
// QwenDynamic this is the shift before the terminal stretch (flow_sigmas applies it).
double shift_time(double t, const Shift& shift, int64_t image_tokens);

// The steps + 1 sigmas of a flow-matching run, from 1 down to exactly 0. Fails if
// steps < 1, or for a dynamic shift if image_tokens < 1 (the shift depends on it).
std::vector<double> flow_sigmas(int steps, const Shift& shift, int64_t image_tokens);

}  // namespace ditrun::runtime
