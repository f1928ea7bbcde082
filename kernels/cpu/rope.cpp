// rope: rotary embedding in place, as Flux's apply_rope: each adjacent pair (x0, x1) of a
// head becomes (cos·x0 − sin·x1, sin·x0 + cos·x1), with (cos, sin) read from a precomputed
// table row [cos0, sin0, cos1, sin1, ...] shared by all heads of the token.
#include "kernels/cpu/cpu_common.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {

void rope(const CpuContext& ctx, Tensor& x, const Tensor& table, int64_t heads) {
  constexpr std::string_view op = "rope";
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "table", table);
  const int64_t c = x.cols();
  if (heads <= 0 || c % heads != 0 || (c / heads) % 2 != 0)
    fail("rope: x {} cannot be split into {} heads of an even width", shape_string(x.shape()), heads);
  const int64_t d = c / heads;
  if (table.cols() != d || table.rows() != x.rows() || (table.batch() != x.batch() && table.batch() != 1))
    fail("rope: table {} does not match x {} with {} heads (need [{} or 1, {}, {}])", shape_string(table.shape()),
         shape_string(x.shape()), heads, x.batch(), x.rows(), d);
  if (c == 0) return;
  detail::parallel_rows(ctx, x.batch(), x.rows(), c, [&](int64_t b, int64_t r) {
    float* row = x.row<float>(b, r);
    const float* t = table.row<const float>(table.batch() == 1 ? 0 : b, r);
    for (int64_t h = 0; h < heads; ++h) {
      float* p = row + h * d;
      for (int64_t j = 0; j < d; j += 2) {
        const float x0 = p[j], x1 = p[j + 1], cs = t[j], sn = t[j + 1];
        p[j] = cs * x0 - sn * x1;
        p[j + 1] = sn * x0 + cs * x1;
      }
    }
    if (ctx.round_bf16) detail::round_bf16(row, c);
  });
}

}  // namespace ditrun::kernels::cpu
