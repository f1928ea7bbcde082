// layer_norm and the fused adaLN layer_norm_modulate: row statistics in double (two passes:
// mean, then the mean squared deviation), so a row of thousands of large activations loses
// nothing to cancellation; eps inside the square root as torch.nn.functional.layer_norm.
#include <cmath>

#include "kernels/cpu/cpu_common.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {
namespace {

struct RowStats {
  float mean, rstd;
};

// Four independent accumulators: the additions pipeline (and pair into SIMD) instead of
// waiting on one another.
RowStats row_stats(const float* x, int64_t n, float eps) {
  double s[4] = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 4 <= n; j += 4)
    for (int u = 0; u < 4; ++u) s[u] += x[j + u];
  for (; j < n; ++j) s[0] += x[j];
  const double mean = (s[0] + s[1] + s[2] + s[3]) / double(n);
  double q[4] = {0, 0, 0, 0};
  j = 0;
  for (; j + 4 <= n; j += 4)
    for (int u = 0; u < 4; ++u) {
      const double d = x[j + u] - mean;
      q[u] += d * d;
    }
  for (; j < n; ++j) q[0] += (x[j] - mean) * (x[j] - mean);
  const double var = (q[0] + q[1] + q[2] + q[3]) / double(n);
  return {float(mean), float(1.0 / std::sqrt(var + double(eps)))};
}

}  // namespace

void layer_norm(const CpuContext& ctx, const Tensor& x, Tensor& y, float eps, const Weight* gamma,
                const Weight* beta) {
  constexpr std::string_view op = "layer_norm";
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "y", y);
  detail::check_same_layout(op, "x", x, "y", y);
  const int64_t c = x.cols();
  const std::string what = fmt::format("x {}", shape_string(x.shape()));
  const std::vector<float> g = gamma ? detail::param_values(op, "gamma", *gamma, c, what, ctx.round_bf16) : std::vector<float>();
  const std::vector<float> bt = beta ? detail::param_values(op, "beta", *beta, c, what, ctx.round_bf16) : std::vector<float>();
  if (c == 0) return;
  detail::parallel_rows(ctx, x.batch(), x.rows(), c, [&](int64_t b, int64_t r) {
    const float* in = x.row<const float>(b, r);
    float* out = y.row<float>(b, r);
    const RowStats st = row_stats(in, c, eps);
    for (int64_t j = 0; j < c; ++j) out[j] = (in[j] - st.mean) * st.rstd;
    if (gamma)
      for (int64_t j = 0; j < c; ++j) out[j] *= g[size_t(j)];
    if (beta)
      for (int64_t j = 0; j < c; ++j) out[j] += bt[size_t(j)];
    if (ctx.round_bf16) detail::round_bf16(out, c);
  });
}

void layer_norm_modulate(const CpuContext& ctx, const Tensor& x, const Tensor& mod, int shift_chunk,
                         int scale_chunk, float eps, Tensor& y) {
  constexpr std::string_view op = "layer_norm_modulate";
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "y", y);
  detail::check_same_layout(op, "x", x, "y", y);
  detail::check_mod(op, mod, shift_chunk, x.batch(), x.cols());
  detail::check_mod(op, mod, scale_chunk, x.batch(), x.cols());
  const int64_t c = x.cols();
  if (c == 0) return;
  detail::parallel_rows(ctx, x.batch(), x.rows(), c, [&](int64_t b, int64_t r) {
    const float* in = x.row<const float>(b, r);
    const float* shift = detail::mod_row(mod, b, shift_chunk);
    const float* scale = detail::mod_row(mod, b, scale_chunk);
    float* out = y.row<float>(b, r);
    const RowStats st = row_stats(in, c, eps);
    for (int64_t j = 0; j < c; ++j) out[j] = (in[j] - st.mean) * st.rstd * (1.0f + scale[j]) + shift[j];
    if (ctx.round_bf16) detail::round_bf16(out, c);
  });
}

}  // namespace ditrun::kernels::cpu
