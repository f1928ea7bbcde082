#include "runtime/sampling/comfy_schedules.h"

#include <cmath>

#include "runtime/core/error.h"

namespace ditrun::runtime {
namespace {

// The flow model's sigma of a normalized time t, in float32 as torch computes it (the shift's
// factors are Python doubles rounded to float32 when they meet a float32 tensor).
float shifted(float t, double shift) {
  if (shift == 1.0) return t;
  return float(shift) * t / (1.0f + float(shift - 1.0) * t);
}

// ModelSamplingDiscreteFlow's table: sigma((arange(1, 1001) / 1000) · 1000), where sigma(ts)
// shifts ts / 1000; every operation in float32.
std::vector<float> sigma_table(double shift) {
  std::vector<float> table(1000);
  for (int k = 0; k < 1000; ++k) {
    float t = float(k + 1) / 1000.0f;
    t = t * 1000.0f;
    table[size_t(k)] = shifted(t / 1000.0f, shift);
  }
  return table;
}

// torch.linspace in float32: from both ends toward the middle, as its CPU kernel does.
std::vector<float> linspace(float start, float end, int n) {
  std::vector<float> out(static_cast<size_t>(n));
  if (n == 1) {
    out[0] = start;
    return out;
  }
  const float step = (end - start) / float(n - 1);
  const int halfway = n / 2;
  for (int i = 0; i < n; ++i) out[size_t(i)] = i < halfway ? start + step * float(i) : end - step * float(n - i - 1);
  return out;
}

// The regularized incomplete beta function I_x(a, b), by its continued fraction (modified
// Lentz), on the side where it converges fast.
double incomplete_beta(double x, double a, double b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incomplete_beta(1 - x, b, a);
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x)) / a;
  constexpr double tiny = 1e-300;
  double f = 1, c = 1, d = 0;
  for (int i = 0; i <= 400; ++i) {
    const int m = i / 2;
    double numerator;
    if (i == 0) numerator = 1;
    else if (i % 2 == 0) numerator = m * (b - m) * x / ((a + 2.0 * m - 1) * (a + 2.0 * m));
    else numerator = -((a + m) * (a + b + m) * x) / ((a + 2.0 * m) * (a + 2.0 * m + 1));
    d = 1 + numerator * d;
    if (std::abs(d) < tiny) d = tiny;
    d = 1 / d;
    c = 1 + numerator / c;
    if (std::abs(c) < tiny) c = tiny;
    const double cd = c * d;
    f *= cd;
    if (std::abs(1 - cd) < 1e-16) break;
  }
  return front * (f - 1);
}

}  // namespace

std::optional<ComfyScheduler> comfy_scheduler_from_name(std::string_view name) {
  if (name == "simple") return ComfyScheduler::simple;
  if (name == "normal") return ComfyScheduler::normal;
  if (name == "beta") return ComfyScheduler::beta;
  if (name == "sgm_uniform") return ComfyScheduler::sgm_uniform;
  return std::nullopt;
}

double beta_quantile(double p, double a, double b) {
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  if (a == b && p == 0.5) return 0.5;  // the symmetric median, exactly
  double lo = 0, hi = 1;
  for (int i = 0; i < 200 && hi - lo > 1e-17; ++i) {
    const double mid = 0.5 * (lo + hi);
    (incomplete_beta(mid, a, b) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

std::vector<double> comfy_sigmas(ComfyScheduler scheduler, int steps, double shift, bool for_unipc) {
  if (steps < 1) fail("schedule: {} steps (at least 1)", steps);
  if (!(shift > 0) || !std::isfinite(shift)) fail("schedule: shift {} (a positive number)", shift);
  if (for_unipc) {
    // The KSampler node: one step more, then the second-to-last sigma dropped.
    std::vector<double> s = comfy_sigmas(scheduler, steps + 1, shift);
    s.erase(s.end() - 2);
    return s;
  }
  const std::vector<float> table = sigma_table(shift);
  std::vector<double> sigmas;
  switch (scheduler) {
    case ComfyScheduler::simple: {
      const double stride = double(table.size()) / double(steps);
      for (int i = 0; i < steps; ++i) sigmas.push_back(table[table.size() - 1 - size_t(double(i) * stride)]);
      break;
    }
    case ComfyScheduler::normal:
    case ComfyScheduler::sgm_uniform: {
      // Timesteps 1000·σ between the table's ends; each back to a sigma shifts again.
      const float start = table.back() * 1000.0f, end = table.front() * 1000.0f;
      const bool sgm = scheduler == ComfyScheduler::sgm_uniform;
      std::vector<float> ts = linspace(start, end, sgm ? steps + 1 : steps);
      if (sgm) ts.pop_back();
      for (float t : ts) sigmas.push_back(shifted(t / 1000.0f, shift));
      break;
    }
    case ComfyScheduler::beta: {
      double last = -1;
      for (int i = 0; i < steps; ++i) {
        // numpy's linspace(0, 1, steps, endpoint=False) is i·(1/steps); rint rounds half to even.
        const double q = std::nearbyint(beta_quantile(1.0 - double(i) * (1.0 / double(steps)), 0.6, 0.6) * 999.0);
        if (q != last) sigmas.push_back(table[size_t(q)]);
        last = q;
      }
      break;
    }
  }
  sigmas.push_back(0.0);
  return sigmas;
}

}  // namespace ditrun::runtime
