// Elementwise ops over (batch, row) views: add with batch broadcast, the gated residual of
// adaLN blocks, copies between views, bf16 rounding, and weight dequantization.
#include <algorithm>
#include <cstring>
#include <span>

#include "kernels/cpu/cpu_common.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {

void add(const CpuContext& ctx, const Tensor& a, const Tensor& b, Tensor& y) {
  constexpr std::string_view op = "add";
  detail::check_host_f32(op, "a", a);
  detail::check_host_f32(op, "b", b);
  detail::check_host_f32(op, "y", y);
  detail::check_same_layout(op, "a", a, "y", y);
  if (b.rows() != a.rows() || b.cols() != a.cols() || (b.batch() != a.batch() && b.batch() != 1))
    fail("add: b {} does not match a {} (its batch may be 1)", shape_string(b.shape()), shape_string(a.shape()));
  const int64_t c = a.cols();
  detail::parallel_rows(ctx, a.batch(), a.rows(), c, [&](int64_t bi, int64_t r) {
    const float* pa = a.row<const float>(bi, r);
    const float* pb = b.row<const float>(b.batch() == 1 ? 0 : bi, r);
    float* out = y.row<float>(bi, r);
    for (int64_t j = 0; j < c; ++j) out[j] = pa[j] + pb[j];
    if (ctx.round_bf16) detail::round_bf16(out, c);
  });
}

void mul(const CpuContext& ctx, const Tensor& a, const Tensor& b, Tensor& y) {
  constexpr std::string_view op = "mul";
  detail::check_host_f32(op, "a", a);
  detail::check_host_f32(op, "b", b);
  detail::check_host_f32(op, "y", y);
  detail::check_same_layout(op, "a", a, "y", y);
  detail::check_same_layout(op, "a", a, "b", b);
  const int64_t c = a.cols();
  detail::parallel_rows(ctx, a.batch(), a.rows(), c, [&](int64_t bi, int64_t r) {
    const float* pa = a.row<const float>(bi, r);
    const float* pb = b.row<const float>(bi, r);
    float* out = y.row<float>(bi, r);
    for (int64_t j = 0; j < c; ++j) out[j] = pa[j] * pb[j];
    if (ctx.round_bf16) detail::round_bf16(out, c);
  });
}

void gated_add(const CpuContext& ctx, Tensor& x, const Tensor& y, const Tensor& mod, int gate_chunk) {
  constexpr std::string_view op = "gated_add";
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "y", y);
  detail::check_same_layout(op, "x", x, "y", y);
  detail::check_mod(op, mod, gate_chunk, x.batch(), x.cols());
  const int64_t c = x.cols();
  detail::parallel_rows(ctx, x.batch(), x.rows(), c, [&](int64_t b, int64_t r) {
    float* out = x.row<float>(b, r);
    const float* in = y.row<const float>(b, r);
    const float* gate = detail::mod_row(mod, b, gate_chunk);
    for (int64_t j = 0; j < c; ++j) out[j] += gate[j] * in[j];
    if (ctx.round_bf16) detail::round_bf16(out, c);
  });
}

void copy(const CpuContext& ctx, const Tensor& src, Tensor& dst) {
  constexpr std::string_view op = "copy";
  detail::check_host_f32(op, "src", src);
  detail::check_host_f32(op, "dst", dst);
  detail::check_same_layout(op, "src", src, "dst", dst);
  const int64_t c = src.cols();
  if (src.contiguous() && dst.contiguous()) {
    // One block; still split so that both cores stream memory.
    const float* s = src.data_as<const float>();
    float* d = dst.data_as<float>();
    if (s != d)
      detail::parallel_chunks(ctx, src.numel(), 1 << 16, [&](int64_t b, int64_t e) {
        std::memmove(d + b, s + b, size_t(e - b) * sizeof(float));
      });
    return;
  }
  detail::parallel_rows(ctx, src.batch(), src.rows(), c, [&](int64_t b, int64_t r) {
    std::memmove(dst.row<float>(b, r), src.row<const float>(b, r), size_t(c) * sizeof(float));
  });
}

void round_to_bf16(const CpuContext& ctx, Tensor& t) {
  detail::check_host_f32("round_to_bf16", "tensor", t);
  const int64_t c = t.cols();
  detail::parallel_rows(ctx, t.batch(), t.rows(), c,
                        [&](int64_t b, int64_t r) { detail::round_bf16(t.row<float>(b, r), c); });
}

void dequantize(const CpuContext& ctx, const Weight& w, Tensor& out) {
  constexpr std::string_view op = "dequantize";
  detail::check_host_f32(op, "out", out);
  if (!out.contiguous()) fail("dequantize '{}': out {} is not contiguous", w.name, shape_string(out.shape()));
  const std::vector<float> values =
      detail::param_values(op, "weight", w, out.numel(), fmt::format("out {}", shape_string(out.shape())), ctx.round_bf16);
  std::copy(values.begin(), values.end(), out.data_as<float>());
}

}  // namespace ditrun::kernels::cpu

