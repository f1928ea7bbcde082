// Group norm: the statistics of a group span every position, so the pass that gathers them
// runs over row chunks in parallel, each summing all groups of its rows (reading rows whole,
// as they lie in memory), in double precision; a second pass normalises the rows.
#include <fmt/format.h>

#include <cmath>
#include <mutex>
#include <vector>

#include "kernels/cpu/cpu_common.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {

void group_norm(const CpuContext& ctx, const Tensor& x, Tensor& y, int64_t groups, float eps, const Weight& gamma,
                const Weight& beta) {
  constexpr std::string_view op = "group_norm";
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "y", y);
  detail::check_same_layout(op, "x", x, "y", y);
  const int64_t c = x.cols(), rows = x.rows();
  if (groups < 1 || c % groups != 0) fail("{}: {} groups do not divide the {} channels of {}", op, groups, c, x.describe());
  const std::string what = fmt::format("x {}", x.describe());
  const std::vector<float> g = detail::param_values(op, "gamma", gamma, c, what, ctx.round_bf16);
  const std::vector<float> be = detail::param_values(op, "beta", beta, c, what, ctx.round_bf16);
  const int64_t per_group = c / groups;
  const double count = double(rows) * double(per_group);

  for (int64_t b = 0; b < x.batch(); ++b) {
    std::vector<double> sum(size_t(groups), 0.0), sum_sq(size_t(groups), 0.0);
    std::mutex merge;
    detail::parallel_chunks(ctx, rows, std::max<int64_t>(1, 16384 / c), [&](int64_t begin, int64_t end) {
      std::vector<double> s(size_t(groups), 0.0), s2(size_t(groups), 0.0);
      for (int64_t r = begin; r < end; ++r) {
        const float* in = x.row<const float>(b, r);
        for (int64_t gi = 0; gi < groups; ++gi) {
          // Double throughout: E[x²] − mean² cancels when the mean is large against the spread.
          double a = 0.0, a2 = 0.0;
          for (int64_t j = gi * per_group; j < (gi + 1) * per_group; ++j) {
            a += in[j];
            a2 += double(in[j]) * in[j];
          }
          s[size_t(gi)] += a;
          s2[size_t(gi)] += a2;
        }
      }
      std::lock_guard lock(merge);
      for (int64_t gi = 0; gi < groups; ++gi) {
        sum[size_t(gi)] += s[size_t(gi)];
        sum_sq[size_t(gi)] += s2[size_t(gi)];
      }
    });
    std::vector<float> scale(static_cast<size_t>(c)), shift(static_cast<size_t>(c));
    for (int64_t gi = 0; gi < groups; ++gi) {
      const double mean = sum[size_t(gi)] / count;
      const double var = std::max(0.0, sum_sq[size_t(gi)] / count - mean * mean);
      const double rstd = 1.0 / std::sqrt(var + double(eps));
      for (int64_t j = gi * per_group; j < (gi + 1) * per_group; ++j) {
        scale[size_t(j)] = float(rstd * g[size_t(j)]);
        shift[size_t(j)] = float(double(be[size_t(j)]) - mean * rstd * g[size_t(j)]);
      }
    }
    detail::parallel_rows(ctx, 1, rows, c, [&](int64_t, int64_t r) {
      const float* in = x.row<const float>(b, r);
      float* out = y.row<float>(b, r);
      for (int64_t j = 0; j < c; ++j) out[j] = in[j] * scale[size_t(j)] + shift[size_t(j)];
      if (ctx.round_bf16) detail::round_bf16(out, c);
    });
  }
}

}  // namespace ditrun::kernels::cpu
