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
  double s = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, s);
  // from_chars also accepts "inf" and "nan"; the finiteness check below refuses them.
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(s) || s <= 0)
    fail("shift '{}': expected \"none\", \"flux-dynamic\" or a positive number such as 5.0", text);
  return {Constant, s};
}

std::string Shift::str() const {
  switch (kind) {
    case None: return "none";
    case FluxDynamic: return "flux-dynamic";
    case Constant: break;
  }
  return fmt::format("{}", value);  // fmt prints the shortest text that parses back exactly
}

double flux_dynamic_mu(int64_t image_tokens) {
  constexpr double base_shift = 0.5, max_shift = 1.15, base_tokens = 256, max_tokens = 4096;
  const double slope = (max_shift - base_shift) / (max_tokens - base_tokens);
  return base_shift + slope * (double(image_tokens) - base_tokens);
}

double shift_time(double t, const Shift& shift, int64_t image_tokens) {
  if (t <= 0) return 0;  // both shift formulas divide by t; the end of the grid stays 0
  switch (shift.kind) {
    case Shift::None:
      return t;
    case Shift::Constant:
      return shift.value * t / (1 + (shift.value - 1) * t);
    case Shift::FluxDynamic: {
      const double e_mu = std::exp(flux_dynamic_mu(image_tokens));
      return e_mu / (e_mu + (1 / t - 1));
    }
  }
  return t;
}

std::vector<double> flow_sigmas(int steps, const Shift& shift, int64_t image_tokens) {
  if (steps < 1) fail("steps {}: must be at least 1", steps);
  if (shift.kind == Shift::FluxDynamic && image_tokens < 1)
    fail("shift flux-dynamic: needs the image token count, got {}", image_tokens);
  std::vector<double> sigmas(size_t(steps) + 1);
  for (int i = 0; i <= steps; ++i) {
    // (steps − i)/steps rather than 1 − i/steps: exact endpoints, symmetric rounding.
    const double t = double(steps - i) / double(steps);
    sigmas[size_t(i)] = shift_time(t, shift, image_tokens);
  }
  return sigmas;
}

}  // namespace ditrun::runtime
