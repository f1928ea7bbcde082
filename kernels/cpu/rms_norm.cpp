// rms_norm over groups of columns (Flux: each head of q and k; Wan: the whole width). The
// mean square is accumulated in double, like layer_norm's statistics.
#include <cmath>

#include "kernels/cpu/cpu_common.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {

void rms_norm(const CpuContext& ctx, const Tensor& x, Tensor& y, const Weight& scale, int64_t group, float eps) {
  constexpr std::string_view op = "rms_norm";
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "y", y);
  detail::check_same_layout(op, "x", x, "y", y);
  const int64_t c = x.cols();
  if (group <= 0 || c % group != 0)
    fail("rms_norm '{}': group {} does not divide the {} columns of x {}", scale.name, group, c,
         shape_string(x.shape()));
  const std::vector<float> s =
      detail::param_values(op, "scale", scale, group, fmt::format("group {}", group), ctx.round_bf16);
  if (c == 0) return;
  detail::parallel_rows(ctx, x.batch(), x.rows(), c, [&](int64_t b, int64_t r) {
    const float* in = x.row<const float>(b, r);
    float* out = y.row<float>(b, r);
    for (int64_t g0 = 0; g0 < c; g0 += group) {
      double acc[4] = {0, 0, 0, 0};
      int64_t j = 0;
      for (; j + 4 <= group; j += 4)
        for (int u = 0; u < 4; ++u) acc[u] += double(in[g0 + j + u]) * in[g0 + j + u];
      for (; j < group; ++j) acc[0] += double(in[g0 + j]) * in[g0 + j];
      const float rrms = float(1.0 / std::sqrt((acc[0] + acc[1] + acc[2] + acc[3]) / double(group) + double(eps)));
      for (j = 0; j < group; ++j) out[g0 + j] = in[g0 + j] * rrms * s[size_t(j)];
    }
    if (ctx.round_bf16) detail::round_bf16(out, c);
  });
}

}  // namespace ditrun::kernels::cpu
