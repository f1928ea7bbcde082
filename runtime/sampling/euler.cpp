#include "runtime/sampling/euler.h"

#include "runtime/core/error.h"

namespace ditrun::runtime {
namespace {

void check_same_shape(const HostTensor& a, const HostTensor& b, const char* what) {
  if (a.shape != b.shape)
    fail("{}: shapes differ, {} vs {}", what, shape_string(a.shape), shape_string(b.shape));
}

}  // namespace

void euler_sample(HostTensor& x, std::span<const double> sigmas, const VelocityFn& velocity,
                  const std::function<void(int step, int steps)>& on_step) {
  if (sigmas.size() < 2) fail("euler: needs at least 2 sigmas (one step), got {}", sigmas.size());
  const int steps = int(sigmas.size()) - 1;
  HostTensor v(x.shape);
  for (int i = 0; i < steps; ++i) {
    velocity(x, sigmas[size_t(i)], v);
    euler_step(x, v, sigmas[size_t(i)], sigmas[size_t(i) + 1]);
    if (on_step) on_step(i + 1, steps);
  }
}

void euler_step(HostTensor& x, const HostTensor& v, double sigma, double sigma_next) {
  check_same_shape(x, v, "euler: velocity");
  const double dt = sigma_next - sigma;
  for (size_t k = 0; k < x.data.size(); ++k) x.data[k] = float(double(x.data[k]) + dt * double(v.data[k]));
}

void cfg_combine(const HostTensor& cond, const HostTensor& uncond, double scale, HostTensor& out) {
  check_same_shape(cond, uncond, "cfg");
  const float s = float(scale);
  if (out.shape != cond.shape) out = HostTensor(cond.shape);  // never true when out aliases an input
  for (size_t k = 0; k < cond.data.size(); ++k) {
    const float u = uncond.data[k];
    out.data[k] = u + s * (cond.data[k] - u);
  }
}

HostTensor denoised(const HostTensor& x, double sigma, const HostTensor& v) {
  check_same_shape(x, v, "denoised");
  HostTensor x0(x.shape);
  const float s = float(sigma);
  for (size_t k = 0; k < x.data.size(); ++k) x0.data[k] = x.data[k] - s * v.data[k];
  return x0;
}

}  // namespace ditrun::runtime
