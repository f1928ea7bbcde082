// The text encoders' CPU kernels against naive double-precision references: the elementwise
// product of T5's gated GELU, CLIP's quick_gelu, and attention with an additive per-head bias and an explicit
// scale (T5's relative positions: no 1/sqrt(D)), with masked keys and a broadcast bias.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "host_test_tensors.h"
#include "kernels/cpu/cpu_kernels.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {
namespace {

const CpuContext kCtx{2, false};

TEST(TextKernels, MulIsElementwiseOnViews) {
  const Tensor wide = random_tensor({2, 5, 20}, 1), b = random_tensor({2, 5, 8}, 2);
  const Tensor a = wide.slice_cols(4, 8);
  Tensor y = random_tensor({2, 5, 8}, 3);
  mul(kCtx, a, b, y);
  const auto va = values(a), vb = values(b), vy = values(y);
  for (size_t i = 0; i < vy.size(); ++i) EXPECT_FLOAT_EQ(float(vy[i]), float(va[i] * vb[i]));
  Tensor bad = random_tensor({2, 5, 9}, 4);
  EXPECT_THROW(mul(kCtx, a, bad, y), Error);
}

TEST(TextKernels, QuickGeluIsXTimesSigmoidOf1702X) {
  Tensor x = random_tensor({2, 3, 40}, 11, 3.0f);
  const auto before = values(x);
  quick_gelu(kCtx, x, x);
  const auto after = values(x);
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_NEAR(after[i], before[i] / (1.0 + std::exp(-1.702 * before[i])), 1e-6 * (1 + std::fabs(before[i])));
}

// softmax(scale·q·kᵀ + bias) v per head, keys at and after kv_len excluded.
std::vector<double> reference(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, double scale,
                              const Tensor& bias, const std::vector<int64_t>& lens) {
  const int64_t batch = q.batch(), lq = q.rows(), lk = k.rows(), d = q.cols() / heads;
  std::vector<double> out(size_t(batch * lq * q.cols()));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < lq; ++i) {
        std::vector<double> s(size_t(lens[size_t(b)]));
        double mx = -INFINITY;
        for (int64_t j = 0; j < lens[size_t(b)]; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += double(q.row<const float>(b, i)[h * d + c]) * k.row<const float>(b, j)[h * d + c];
          s[size_t(j)] = scale * dot + bias.row<const float>(bias.batch() == 1 ? 0 : b, h * lq + i)[j];
          mx = std::max(mx, s[size_t(j)]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t c = 0; c < d; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < lens[size_t(b)]; ++j) acc += s[size_t(j)] * v.row<const float>(b, j)[h * d + c];
          out[size_t((b * lq + i) * q.cols() + h * d + c)] = acc / sum;
        }
      }
  return out;
}

TEST(TextKernels, AttentionWithBiasAndScale) {
  const int64_t heads = 3, d = 16, lq = 37, lk = 300;  // more keys than one key tile
  const Tensor q = random_tensor({2, lq, heads * d}, 5), k = random_tensor({2, lk, heads * d}, 6),
               v = random_tensor({2, lk, heads * d}, 7);
  for (const int64_t bias_batch : {int64_t(1), int64_t(2)}) {
    const Tensor bias = random_tensor({bias_batch, heads * lq, lk}, 8, 2.0f);
    const std::vector<int64_t> lens{lk, 150};
    Tensor out = random_tensor({2, lq, heads * d}, 9);
    attention_biased(kCtx, q, k, v, out, heads, 1.0f, &bias, lens);
    const std::vector<double> want = reference(q, k, v, heads, 1.0, bias, lens), got = values(out);
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
    EXPECT_LT(worst, 2e-5) << "bias batch " << bias_batch;
  }
  const Tensor wrong = random_tensor({1, heads * lq, lk - 1}, 10);
  Tensor out = random_tensor({2, lq, heads * d}, 9);
  EXPECT_THROW(attention_biased(kCtx, q, k, v, out, heads, 1.0f, &wrong, {}), Error);
}

}  // namespace
}  // namespace ditrun::kernels::cpu
