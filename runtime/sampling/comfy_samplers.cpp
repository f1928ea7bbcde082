#include "runtime/sampling/comfy_samplers.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "runtime/core/error.h"

namespace ditrun::runtime {
namespace {

void check_same(const HostTensor& a, const HostTensor& b) {
  if (a.shape != b.shape) fail("sampler: velocity {} is not the sample's shape {}", shape_string(b.shape), shape_string(a.shape));
}

// The data estimate D = x − σ·v.
HostTensor data_estimate(const HostTensor& x, const HostTensor& v, double sigma) {
  HostTensor d(x.shape);
  for (size_t i = 0; i < x.data.size(); ++i) d.data[i] = float(double(x.data[i]) - sigma * double(v.data[i]));
  return d;
}

// ---- dpmpp_2m: t = −log σ.

void dpmpp_2m_step(std::span<const double> sigmas, int step, HostTensor& x, const HostTensor& v, SolverHistory& history) {
  const double sigma = sigmas[size_t(step)], next = sigmas[size_t(step) + 1];
  const HostTensor d = data_estimate(x, v, sigma);
  const bool first_order = history.estimates.empty() || next == 0;
  // x ← (σ_next/σ)·x − expm1(−h)·D', h = t_next − t; into σ = 0 this is D itself.
  const double ratio = next / sigma, weight = next == 0 ? 1.0 : -std::expm1(-(std::log(sigma) - std::log(next)));
  if (first_order) {
    for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = float(ratio * double(x.data[i]) + weight * double(d.data[i]));
  } else {
    const double h = std::log(sigma) - std::log(next), h_last = std::log(sigmas[size_t(step) - 1]) - std::log(sigma);
    const double r = h_last / h, a = 1 + 1 / (2 * r), b = 1 / (2 * r);
    const HostTensor& prev = history.estimates.back();
    for (size_t i = 0; i < x.data.size(); ++i)
      x.data[i] = float(ratio * double(x.data[i]) + weight * (a * double(d.data[i]) - b * double(prev.data[i])));
  }
  history.estimates.assign(1, d);
}

// ---- uni_pc: the VP view of a sigma, in float32 as ComfyUI evaluates it (which matters at
// the final 0.001, where float32 cancellation gives std = 2^-10).

struct VpPoint {
  double alpha, std, lambda;
};

VpPoint vp(double sigma) {
  const float s = float(sigma);
  const float lmc = 0.5f * std::log(1.0f / (s * s + 1.0f));
  const float alpha = std::exp(lmc);
  const float rest = 1.0f - std::exp(2.0f * lmc);
  return {alpha, std::sqrt(rest), lmc - 0.5f * std::log(rest)};
}

// Solves the n×n system a·x = b (n ≤ 3) by Gaussian elimination with partial pivoting.
std::vector<double> solve(std::vector<std::array<double, 3>> a, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t c = 0; c < n; ++c) {
    size_t pivot = c;
    for (size_t r = c + 1; r < n; ++r)
      if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
    std::swap(a[c], a[pivot]);
    std::swap(b[c], b[pivot]);
    for (size_t r = c + 1; r < n; ++r) {
      const double f = a[r][c] / a[c][c];
      for (size_t k = c; k < n; ++k) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n);
  for (size_t c = n; c-- > 0;) {
    double v = b[c];
    for (size_t k = c + 1; k < n; ++k) v -= a[c][k] * x[k];
    x[c] = v / a[c][c];
  }
  return x;
}

// One UniPC update of order q from y at sigma `from` (history: data estimates, newest last,
// at consecutive sigmas ending at `from`) to sigma `to`: the predictor, or with `m_to` (the
// model's estimate at the predicted point) the corrector.
HostTensor uni_update(bool bh2, const HostTensor& y, std::span<const double> history_sigmas,
                      const std::vector<HostTensor>& estimates, double from, double to, int q, const HostTensor* m_to) {
  const VpPoint p0 = vp(from), pt = vp(to);
  const double h = pt.lambda - p0.lambda;
  const HostTensor& m0 = estimates.back();
  std::vector<double> r;
  std::vector<const HostTensor*> older;
  for (int i = 1; i < q; ++i) {
    r.push_back((vp(history_sigmas[history_sigmas.size() - 1 - size_t(i)]).lambda - p0.lambda) / h);
    older.push_back(&estimates[estimates.size() - 1 - size_t(i)]);
  }
  r.push_back(1.0);
  const double hh = -h, hphi1 = std::expm1(hh), big_b = bh2 ? std::expm1(hh) : hh;
  std::vector<std::array<double, 3>> rows(static_cast<size_t>(q));
  std::vector<double> b(static_cast<size_t>(q));
  double g = hphi1 / hh - 1, factorial = 1;
  for (int k = 1; k <= q; ++k) {
    for (int j = 0; j < q; ++j) rows[size_t(k - 1)][size_t(j)] = std::pow(r[size_t(j)], k - 1);
    b[size_t(k - 1)] = g * factorial / big_b;
    factorial *= k + 1;
    g = g / hh - 1 / factorial;
  }
  // Weights of the differences D1_i = (m_i − m_0)/r_i and (corrector) of m_to − m_0.
  std::vector<double> rho;
  if (m_to) {
    rho = q == 1 ? std::vector<double>{0.5} : solve(rows, b);
  } else if (q == 2) {
    rho = {0.5};
  } else if (q >= 3) {
    std::vector<std::array<double, 3>> top(rows.begin(), rows.end() - 1);
    rho = solve(top, std::vector<double>(b.begin(), b.end() - 1));
  }
  HostTensor out(y.shape);
  const double scale = pt.std / p0.std, base = -pt.alpha * hphi1, step = -pt.alpha * big_b;
  for (size_t e = 0; e < y.data.size(); ++e) {
    const double m = m0.data[e];
    double sum = 0;
    for (size_t i = 0; i < older.size() && i < rho.size(); ++i) sum += rho[i] * (double(older[i]->data[e]) - m) / r[i];
    if (m_to) sum += rho.back() * (double(m_to->data[e]) - m);
    out.data[e] = float(scale * double(y.data[e]) + base * m + step * sum);
  }
  return out;
}

void uni_pc_step(bool bh2, std::span<const double> given, int step, HostTensor& x, const HostTensor& v,
                 SolverHistory& history) {
  const int steps = int(given.size()) - 1;
  if (steps < 2) fail("sampler: uni_pc needs at least 2 steps (its schedule has {})", steps);
  std::vector<double> s(given.begin(), given.end());
  if (s.back() == 0) s.back() = 0.001;  // ComfyUI's UniPC ends at 0.001
  const int order = std::min(3, steps - 1);
  // The order of the update into s[k] (k = 1..steps − 1); the final one into s[steps] is 1.
  const auto order_of = [&](int k) { return k < order ? k : std::min(order, steps + 1 - k); };
  const HostTensor m = data_estimate(x, v, s[size_t(step)]);
  const std::span<const double> sigmas(s);
  if (step == 0) {
    history.estimates.assign(1, m);
    HostTensor y(x.shape);
    const double to_vp = 1 / std::sqrt(1 + s[0] * s[0]);
    for (size_t i = 0; i < x.data.size(); ++i) y.data[i] = float(double(x.data[i]) * to_vp);
    history.corrected = std::move(y);
  } else {
    // The corrector of the update into s[step], with the model's estimate at the point it predicted.
    const int q = order_of(step);
    history.corrected = uni_update(bh2, history.corrected, sigmas.subspan(size_t(step) - history.estimates.size(), history.estimates.size()),
                                   history.estimates, s[size_t(step) - 1], s[size_t(step)], q, &m);
    history.estimates.push_back(m);
    if (int(history.estimates.size()) > order) history.estimates.erase(history.estimates.begin());
  }
  const std::span<const double> known = sigmas.subspan(size_t(step) + 1 - history.estimates.size(), history.estimates.size());
  const int next = step + 1;
  const HostTensor y = uni_update(bh2, history.corrected, known, history.estimates, s[size_t(step)], s[size_t(next)],
                                  next == steps ? 1 : order_of(next), nullptr);
  // Back from the VP view: the next model input x = y·√(1+σ²); after the last step the
  // result y/α(σ_end) / (1 − σ_end), as ComfyUI's flow output divides by 1 − its last sigma.
  const double from_vp = next == steps ? 1.0 / (vp(s[size_t(next)]).alpha * (1.0 - s[size_t(next)]))
                                       : std::sqrt(1 + s[size_t(next)] * s[size_t(next)]);
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = float(double(y.data[i]) * from_vp);
}

}  // namespace

void comfy_sampler_step(ComfySampler sampler, std::span<const double> sigmas, int step, HostTensor& x,
                        const HostTensor& v, SolverHistory& history) {
  const int steps = int(sigmas.size()) - 1;
  if (step < 0 || step >= steps) fail("sampler: step {} outside a schedule of {} steps", step, steps);
  check_same(x, v);
  if (step == 0) history = {};
  switch (sampler) {
    case ComfySampler::dpmpp_2m: return dpmpp_2m_step(sigmas, step, x, v, history);
    case ComfySampler::uni_pc: return uni_pc_step(false, sigmas, step, x, v, history);
    case ComfySampler::uni_pc_bh2: return uni_pc_step(true, sigmas, step, x, v, history);
  }
}

}  // namespace ditrun::runtime
