#include "runtime/sampling/schedule.h"

#include <charconv>
#include <cmath>

#include "runtime/core/error.h"

namespace ditrun::runtime {

Shift Shift::constant(double s) {
  if (!std::isfinite(s) || s <= 0) fail("shift {}: must be a positive number", s);
  return {Constant, s};
}

Shift Shift::parse(std::string_view text) {
  if (text == "none") return none();
  if (text == "flux-dynamic") return flux_dynamic();
  if (text == "qwen-dynamic") return qwen_dynamic();
  double s = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, s);
  // from_chars also accepts "inf" and "nan"; the finiteness check below refuses them.
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(s) || s <= 0)
    fail("shift '{}': expected \"none\", \"flux-dynamic\", \"qwen-dynamic\" or a positive number such as 5.0", text);
  return {Constant, s};
}

std::string Shift::str() const {
  switch (kind) {
    case None: return "none";
    case FluxDynamic: return "flux-dynamic";
    case QwenDynamic: return "qwen-dynamic";
    case Constant: break;
  }
  return fmt::format("{}", value);  // fmt prints the shortest text that parses back exactly
}

double flux_dynamic_mu(int64_t image_tokens) {
  constexpr double base_shift = 0.5, max_shift = 1.15, base_tokens = 256, max_tokens = 4096;
  const double slope = (max_shift - base_shift) / (max_tokens - base_tokens);
  return base_shift + slope * (double(image_tokens) - base_tokens);
}

double qwen_dynamic_mu(int64_t image_tokens) {
  constexpr double base_shift = 0.5, max_shift = 0.9, base_tokens = 256, max_tokens = 8192;
  const double slope = (max_shift - base_shift) / (max_tokens - base_tokens);
  return double(image_tokens) * slope + (base_shift - slope * base_tokens);
}

namespace {

// Qwen-Image's schedule as the official pipeline computes it: the grid linspace(1, 1/N, N) in
// double, rounded to f32; each shift and stretch step in f32 (numpy keeps f32 arrays f32 when
// Python scalars join them); then 0 appended.
std::vector<double> qwen_sigmas(int steps, int64_t image_tokens) {
  const float e_mu = float(std::exp(qwen_dynamic_mu(image_tokens)));
  constexpr float kTerminal = 0.02f;
  std::vector<float> sigma(static_cast<size_t>(steps));
  const double stop = 1.0 / steps, step = steps > 1 ? (stop - 1.0) / (steps - 1) : 0.0;
  for (int i = 0; i < steps; ++i) {
    const float t = float(i == steps - 1 ? stop : 1.0 + i * step);
    sigma[size_t(i)] = e_mu / (e_mu + (1.0f / t - 1.0f));
  }
  // Stretch so the last is shift_terminal: 1 − (1 − σ)/((1 − σ_last)/(1 − terminal)). One step
  // has nothing to stretch (σ_last = 1 would divide by zero).
  const float scale = (1.0f - sigma.back()) / (1.0f - kTerminal);
  if (scale > 0)
    for (float& s : sigma) s = 1.0f - (1.0f - s) / scale;
  std::vector<double> out(sigma.begin(), sigma.end());
  out.push_back(0.0);
  return out;
}

}  // namespace

double shift_time(double t, const Shift& shift, int64_t image_tokens) {
  if (t <= 0) return 0;  // both shift formulas divide by t; the end of the grid stays 0
  switch (shift.kind) {
    case Shift::None:
      return t;
    case Shift::Constant:
      return shift.value * t / (1 + (shift.value - 1) * t);
    case Shift::FluxDynamic:
    case Shift::QwenDynamic: {
      const double mu = shift.kind == Shift::FluxDynamic ? flux_dynamic_mu(image_tokens) : qwen_dynamic_mu(image_tokens);
      const double e_mu = std::exp(mu);
      return e_mu / (e_mu + (1 / t - 1));
    }
  }
  return t;
}

std::vector<double> flow_sigmas(int steps, const Shift& shift, int64_t image_tokens) {
  if (steps < 1) fail("steps {}: must be at least 1", steps);
  if (shift.dynamic() && image_tokens < 1) fail("shift {}: needs the image token count, got {}", shift.str(), image_tokens);
  if (shift.kind == Shift::QwenDynamic) return qwen_sigmas(steps, image_tokens);
  std::vector<double> sigmas(size_t(steps) + 1);
  for (int i = 0; i <= steps; ++i) {
    // (steps − i)/steps rather than 1 − i/steps: exact endpoints, symmetric rounding.
    const double t = double(steps - i) / double(steps);
    sigmas[size_t(i)] = shift_time(t, shift, image_tokens);
  }
  return sigmas;
}

}  // namespace ditrun::runtime
