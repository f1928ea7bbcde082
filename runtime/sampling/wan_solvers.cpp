#include "runtime/sampling/wan_solvers.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/core/error.h"

namespace ditrun::runtime {
namespace {

double shifted(double s, double shift) { return shift * s / (1.0 + (shift - 1.0) * s); }

// λ = log(α/σ); +∞ at σ = 0.
double lambda_of(double sigma) {
  return sigma <= 0 ? std::numeric_limits<double>::infinity() : std::log((1.0 - sigma) / sigma);
}

void check_same(const HostTensor& a, const HostTensor& b, const char* what) {
  if (a.shape != b.shape)
    fail("solver: {} {} is not the sample's shape {}", what, shape_string(b.shape), shape_string(a.shape));
}

// out[i] = a·x[i] + b·y[i] + c·z[i] (+ d·w[i]) in double, rounded once.
HostTensor combine(double a, const HostTensor& x, double b, const HostTensor& y, double c = 0,
                   const HostTensor* z = nullptr, double d = 0, const HostTensor* w = nullptr) {
  HostTensor out(x.shape);
  for (size_t i = 0; i < x.data.size(); ++i) {
    double v = a * double(x.data[i]) + b * double(y.data[i]);
    if (z) v += c * double(z->data[i]);
    if (w) v += d * double(w->data[i]);
    out.data[i] = float(v);
  }
  return out;
}

// One exponential-integrator step of data prediction from (σ, x) to σ_next with the data
// estimate m and a second-order term D: (σ_next/σ)·x − α_next·E·m − α_next·E·D, E = e^{−h} − 1.
HostTensor exp_step(double sigma, double sigma_next, const HostTensor& x, const HostTensor& m, double d_weight,
                    const HostTensor* d) {
  const double h = lambda_of(sigma_next) - lambda_of(sigma);
  const double e = std::expm1(-h);  // −1 into σ = 0
  const double alpha_next = 1.0 - sigma_next;
  return combine(sigma_next / sigma, x, -alpha_next * e, m, -alpha_next * e * d_weight, d);
}

}  // namespace

std::optional<WanSolver> wan_solver_from_name(std::string_view name) {
  if (name == "unipc") return WanSolver::unipc;
  if (name == "dpm++") return WanSolver::dpmpp;
  return std::nullopt;
}

WanSchedule wan_schedule(WanSolver solver, int steps, double shift) {
  if (steps < 1) fail("schedule: {} steps (at least 1)", steps);
  if (!(shift > 0) || !std::isfinite(shift)) fail("schedule: shift {} (a positive number)", shift);
  // UniPC starts from the first entry of the scheduler's float32 training table, 1 − 1/1000.
  const double start = solver == WanSolver::unipc ? double(float(1.0 - 1.0 / 1000.0)) : 1.0;
  WanSchedule s;
  // numpy's linspace(start, 0, steps + 1): k·step + start with step = −start/steps. The
  // rounding matters: at shift 5, σ = 1/6 shifts to 0.5, and the truncated timestep is 500
  // from above and 499 from below.
  const double step = (0.0 - start) / double(steps);
  for (int k = 0; k < steps; ++k) {
    const double sigma = shifted(double(k) * step + start, shift);
    s.timesteps.push_back(std::trunc(sigma * 1000.0));
    s.sigmas.push_back(double(float(sigma)));
  }
  s.sigmas.push_back(0.0);
  return s;
}

void wan_solver_step(WanSolver solver, std::span<const double> sigmas, int step, HostTensor& x, const HostTensor& v,
                     SolverHistory& history) {
  const int steps = int(sigmas.size()) - 1;
  if (step < 0 || step >= steps) fail("solver: step {} outside a schedule of {} steps", step, steps);
  check_same(x, v, "velocity");
  const double sigma = sigmas[size_t(step)], sigma_next = sigmas[size_t(step) + 1];
  const HostTensor m = combine(1.0, x, -sigma, v);  // data estimate
  std::vector<HostTensor>& ms = history.estimates;

  if (solver == WanSolver::dpmpp) {
    const bool second = step > 0 && step < steps - 1 && !ms.empty();
    if (second) {
      const double h = lambda_of(sigma_next) - lambda_of(sigma);
      const double r = (lambda_of(sigma) - lambda_of(sigmas[size_t(step) - 1])) / h;
      // m + D/2 with D = (m − m_prev)/r.
      const HostTensor mid = combine(1.0 + 0.5 / r, m, -0.5 / r, ms.back());
      x = exp_step(sigma, sigma_next, x, mid, 0, nullptr);
    } else {
      x = exp_step(sigma, sigma_next, x, m, 0, nullptr);
    }
    ms.push_back(m);
    if (ms.size() > 1) ms.erase(ms.begin());
    return;
  }

  // UniPC. 1: correct the previous step with this step's estimate.
  HostTensor corrected = x;
  if (step > 0) {
    const double sigma_prev = sigmas[size_t(step) - 1];
    const double h = lambda_of(sigma) - lambda_of(sigma_prev);
    const double e = std::expm1(-h);
    const HostTensor& m_prev = ms.back();
    if (history.last_order == 1) {
      // C = ½(m − m_prev)
      const HostTensor c = combine(0.5, m, -0.5, m_prev);
      corrected = exp_step(sigma_prev, sigma, history.corrected, m_prev, 1.0, &c);
    } else {
      const HostTensor& m_prev2 = ms.front();
      const double r = (lambda_of(sigmas[size_t(step) - 2]) - lambda_of(sigma_prev)) / h;
      const double phi1 = e / (-h) - 1.0, phi2 = phi1 / (-h) - 0.5;
      const double a = phi1 / e, b = 2.0 * phi2 / e;  // [[1,1],[r,1]]·ρ = (a, b)
      const double rho1 = (a - b) / (1.0 - r), rho2 = a - rho1;
      // C = ρ₁·(m_prev2 − m_prev)/r + ρ₂·(m − m_prev)
      const HostTensor c = combine(rho1 / r, m_prev2, rho2, m, -(rho1 / r + rho2), &m_prev);
      corrected = exp_step(sigma_prev, sigma, history.corrected, m_prev, 1.0, &c);
    }
  }
  // 2: predict from the corrected sample, order 1 at the first and the last step.
  const int order = std::min({2, step + 1, steps - step});
  if (order == 2) {
    const double h = lambda_of(sigma_next) - lambda_of(sigma);
    const double r = (lambda_of(sigmas[size_t(step) - 1]) - lambda_of(sigma)) / h;
    const HostTensor p = combine(0.5 / r, ms.back(), -0.5 / r, m);  // ½·(m_prev − m)/r
    x = exp_step(sigma, sigma_next, corrected, m, 1.0, &p);
  } else {
    x = exp_step(sigma, sigma_next, corrected, m, 0, nullptr);
  }
  history.corrected = std::move(corrected);
  history.last_order = order;
  ms.push_back(m);
  if (ms.size() > 2) ms.erase(ms.begin());
}

}  // namespace ditrun::runtime
