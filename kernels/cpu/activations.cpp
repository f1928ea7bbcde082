// Pointwise activations. The exact GELU, x·Φ(x) = ½·x·(1 + erf(x/√2)), straight from erf;
// the others are of the form x / (1 + e^a(x)): silu with a = −x, CLIP's quick_gelu with
// a = −1.702·x, and gelu_tanh
// through the identity 0.5·(1 + tanh(u)) = 1 / (1 + e^(−2u)), which has no cancellation
// where tanh(u) is near −1. Each row goes through a small stack buffer: the arguments a(x),
// one vectorised exp_inplace, then the quotients; y may alias x because every element of a
// block is read before it is written.
#include <cmath>

#include "kernels/cpu/cpu_common.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {
namespace {

constexpr int64_t kBlock = 256;

// Checks x and y, then runs `row(in, out, cols)` on every row (rounding it to bf16 after,
// when the context asks).
template <class Row>
void each_row(const CpuContext& ctx, std::string_view op, const Tensor& x, Tensor& y, Row&& row) {
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "y", y);
  detail::check_same_layout(op, "x", x, "y", y);
  const int64_t c = x.cols();
  detail::parallel_rows(ctx, x.batch(), x.rows(), c, [&](int64_t b, int64_t r) {
    float* out = y.row<float>(b, r);
    row(x.row<const float>(b, r), out, c);
    if (ctx.round_bf16) detail::round_bf16(out, c);
  });
}

template <class Arg>
void sigmoid_weighted(const CpuContext& ctx, std::string_view op, const Tensor& x, Tensor& y, Arg&& arg) {
  each_row(ctx, op, x, y, [&](const float* in, float* out, int64_t c) {
    float e[kBlock];
    for (int64_t j0 = 0; j0 < c; j0 += kBlock) {
      const int64_t n = std::min(kBlock, c - j0);
      for (int64_t j = 0; j < n; ++j) e[j] = arg(in[j0 + j]);
      detail::exp_inplace(e, n);
      for (int64_t j = 0; j < n; ++j) out[j0 + j] = in[j0 + j] / (1.0f + e[j]);
    }
  });
}

}  // namespace

void gelu_tanh(const CpuContext& ctx, const Tensor& x, Tensor& y) {
  // e^(−2u), u = sqrt(2/pi)·(x + 0.044715·x³)
  sigmoid_weighted(ctx, "gelu_tanh", x, y,
                   [](float v) { return -2.0f * 0.7978845608028654f * (v + 0.044715f * v * v * v); });
}

void gelu(const CpuContext& ctx, const Tensor& x, Tensor& y) {
  each_row(ctx, "gelu", x, y, [](const float* in, float* out, int64_t c) {
    for (int64_t j = 0; j < c; ++j) out[j] = 0.5f * in[j] * (1.0f + std::erf(in[j] * 0.7071067811865476f));
  });
}

void silu(const CpuContext& ctx, const Tensor& x, Tensor& y) {
  sigmoid_weighted(ctx, "silu", x, y, [](float v) { return -v; });
}

void quick_gelu(const CpuContext& ctx, const Tensor& x, Tensor& y) {
  sigmoid_weighted(ctx, "quick_gelu", x, y, [](float v) { return -1.702f * v; });
}

}  // namespace ditrun::kernels::cpu
