// The CPU kernels and the CPU backend against naive double-precision references written
// here: every op on small random shapes, on views (column slices with row_stride != cols,
// row slices of [B, L, C] with batch_stride != rows·row_stride, batch broadcasting), linear
// in several storage types and scale layouts, attention with masks and sizes that are not
// multiples of its tiles, BF16 precision mode, and the errors for mismatched shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/cpu_common.h"
#include "kernels/cpu/cpu_kernels.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/core/float_codecs.h"
#include "host_test_tensors.h"

namespace ditrun::kernels::cpu {
namespace {

const CpuContext kF32{2, false};
const CpuContext kBf16{2, true};
constexpr float kSentinel = -12345.0f;

Tensor filled_tensor(const Shape& shape, float value) {
  Tensor t = random_tensor(shape, 0);
  std::fill_n(t.data_as<float>(), t.numel(), value);
  return t;
}

void expect_near_all(const std::vector<double>& want, const Tensor& got, double tol, const std::string& what) {
  const std::vector<double> g = values(got);
  ASSERT_EQ(want.size(), g.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double err = std::abs(g[i] - want[i]) / (1.0 + std::abs(want[i]));
    if (!(err <= worst)) worst = err, at = i;
  }
  EXPECT_LE(worst, tol) << what << ": element " << at << " is " << g[at] << ", want " << want[at];
}

// Counts elements of a whole buffer that still hold the sentinel: a kernel writing through a
// view must leave everything outside it alone.
int64_t sentinels(const Tensor& whole) {
  const float* p = whole.data_as<const float>();
  return std::count(p, p + whole.numel(), kSentinel);
}

// ---- linear

// x · Wᵀ + bias in double, W and bias as Weight::dequantize decodes them.
std::vector<double> reference_linear(const Tensor& x, const Weight& w, const Weight* bias) {
  const std::vector<float> wv = w.dequantize();
  const std::vector<float> bv = bias ? bias->dequantize() : std::vector<float>();
  const std::vector<double> xv = values(x);
  const int64_t m = x.batch() * x.rows(), k = w.cols(), n = w.rows();
  std::vector<double> y(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < n; ++o) {
      double acc = bias ? bv[size_t(o)] : 0.0;
      for (int64_t j = 0; j < k; ++j) acc += xv[size_t(i * k + j)] * double(wv[size_t(o * k + j)]);
      y[size_t(i * n + o)] = acc;
    }
  return y;
}

struct LinearCase {
  int64_t batch, rows, n, k;
};

// x a column slice of a wider buffer; y a column and row slice of a longer one, so that
// its batch stride is not rows · row_stride (one GEMM per batch item).
void check_linear(DType storage, LinearCase c, bool with_bias, ScaleLayout scales = ScaleLayout::None) {
  const std::string what = fmt::format("{} {}x{}x{}x{}", dtype_name(storage), c.batch, c.rows, c.n, c.k);
  TestWeight w("blk.0.proj.weight", {c.n, c.k}, storage, 11);
  if (scales == ScaleLayout::PerRow) {
    w.w.scale_layout = scales;
    for (int64_t r = 0; r < c.n; ++r) w.w.scales.push_back(0.5f + 0.01f * float(r));
  } else if (scales == ScaleLayout::PerTensor) {
    w.w.scale_layout = scales;
    w.w.scales = {3.0f};
  }
  TestWeight bias("blk.0.proj.bias", {c.n}, DType::BF16, 12);
  Tensor x_all = random_tensor({c.batch, c.rows, c.k + 24}, 13);
  Tensor x = x_all.slice_cols(8, c.k);
  Tensor y_all = filled_tensor({c.batch, c.rows + 5, c.n + 7}, kSentinel);
  Tensor y = y_all.slice_cols(3, c.n).slice_rows(2, c.rows);
  linear(kF32, x, w.w, with_bias ? &bias.w : nullptr, y);
  expect_near_all(reference_linear(x, w.w, with_bias ? &bias.w : nullptr), y, 5e-5, what);
  EXPECT_EQ(sentinels(y_all), y_all.numel() - y.numel()) << what;
}

TEST(CpuLinear, EveryStorageTypeOnViews) {
  for (DType t : {DType::F32, DType::BF16, DType::Q8_0, DType::Q4_K}) {
    check_linear(t, {2, 5, 40, 256}, true);
    check_linear(t, {1, 3, 300, 512}, false);  // few rows: the weight decodes in several chunks
  }
}

TEST(CpuLinear, ThreadSplits) {
  check_linear(DType::Q8_0, {3, 100, 40, 256}, true);   // narrow N: the threads split the rows
  check_linear(DType::F32, {2, 70, 300, 96}, true);     // F32 in place, split by columns
  check_linear(DType::BF16, {1, 1, 1000, 64}, true);    // a vector
}

TEST(CpuLinear, ScaleLayouts) {
  check_linear(DType::F32, {2, 4, 48, 64}, true, ScaleLayout::PerRow);
  check_linear(DType::Q8_0, {2, 4, 48, 64}, false, ScaleLayout::PerRow);
  check_linear(DType::BF16, {2, 4, 48, 64}, true, ScaleLayout::PerTensor);
}

// BF16 mode: x and the decoded weight rounded to bf16, f32 accumulation, the output rounded.
// Enough rows that the rounding of x and the GEMM both run on several threads.
TEST(CpuLinear, Bf16ModeRoundsOperandsAndOutput) {
  TestWeight w("w", {70, 96}, DType::F32, 7);
  TestWeight bias("b", {70}, DType::F32, 8);
  Tensor x_all = random_tensor({3, 200, 100}, 9);
  Tensor x = x_all.slice_cols(2, 96);
  Tensor y = filled_tensor({3, 200, 70}, 0.0f);
  linear(kBf16, x, w.w, &bias.w, y);
  const std::vector<float> wv = w.w.dequantize(), bv = bias.w.dequantize();
  std::vector<double> want;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t r = 0; r < 200; ++r)
      for (int64_t o = 0; o < 70; ++o) {
        double acc = 0;
        for (int64_t j = 0; j < 96; ++j)
          acc += double(detail::round_bf16(x.row<const float>(b, r)[j])) * detail::round_bf16(wv[size_t(o * 96 + j)]);
        want.push_back(detail::round_bf16(float(acc + detail::round_bf16(bv[size_t(o)]))));
      }
  // One bf16 ulp (up to 2^-7 relative) lets the f32 sum round to the neighbouring value.
  expect_near_all(want, y, 1.0 / 128, "bf16 linear");
  for (double v : values(y)) ASSERT_EQ(float(v), detail::round_bf16(float(v)));
  Tensor y32 = filled_tensor({3, 200, 70}, 0.0f);
  linear(kF32, x, w.w, &bias.w, y32);
  EXPECT_NE(values(y), values(y32));
}

TEST(CpuLinear, MisalignedF32WeightIsDecoded) {
  TestWeight w("w", {24, 32}, DType::F32, 5);
  std::vector<uint8_t> shifted(w.bytes.size() + 2);
  std::memcpy(shifted.data() + 2, w.bytes.data(), w.bytes.size());
  Weight moved = w.w;
  moved.bytes = std::span<const uint8_t>(shifted.data() + 2, w.bytes.size());
  Tensor x = random_tensor({3, 32}, 6);
  Tensor y = filled_tensor({3, 24}, 0.0f);
  linear(kF32, x, moved, nullptr, y);
  expect_near_all(reference_linear(x, w.w, nullptr), y, 2e-5, "misaligned");
}

TEST(CpuLinear, ShapeErrorsNameTheWeight) {
  TestWeight w("double_blocks.3.img_mlp.0.weight", {16, 32}, DType::F32, 1);
  TestWeight bias("double_blocks.3.img_mlp.0.bias", {15}, DType::F32, 2);
  Tensor x = random_tensor({2, 3, 32}, 3);
  Tensor y_bad = random_tensor({2, 3, 17}, 4);
  try {
    linear(kF32, x, w.w, nullptr, y_bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("linear"), std::string::npos) << m;
    EXPECT_NE(m.find("double_blocks.3.img_mlp.0.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("[2, 3, 17]"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  Tensor y = random_tensor({2, 3, 16}, 4);
  EXPECT_THROW(linear(kF32, random_tensor({2, 3, 31}, 5), w.w, nullptr, y), Error);
  EXPECT_THROW(linear(kF32, random_tensor({2, 4, 32}, 5), w.w, nullptr, y), Error);
  EXPECT_THROW(linear(kF32, x, w.w, &bias.w, y), Error);
}

// ---- norms

std::vector<double> reference_layer_norm(const Tensor& x, float eps, const std::vector<float>* g,
                                         const std::vector<float>* b, const Tensor* mod = nullptr, int shift = 0,
                                         int scale = 0) {
  std::vector<double> out;
  const int64_t c = x.cols();
  for (int64_t bi = 0; bi < x.batch(); ++bi)
    for (int64_t r = 0; r < x.rows(); ++r) {
      const float* in = x.row<const float>(bi, r);
      double mean = 0, var = 0;
      for (int64_t j = 0; j < c; ++j) mean += in[j];
      mean /= double(c);
      for (int64_t j = 0; j < c; ++j) var += (in[j] - mean) * (in[j] - mean);
      var /= double(c);
      for (int64_t j = 0; j < c; ++j) {
        double v = (in[j] - mean) / std::sqrt(var + eps);
        if (g) v *= (*g)[size_t(j)];
        if (b) v += (*b)[size_t(j)];
        if (mod) {
          const int64_t mb = mod->batch() == 1 ? 0 : bi;
          v = v * (1.0 + mod->row<const float>(mb, scale)[j]) + mod->row<const float>(mb, shift)[j];
        }
        out.push_back(v);
      }
    }
  return out;
}

TEST(CpuNorms, LayerNormPlainAndAffine) {
  // An offset mean and a wide spread: a one-pass variance in f32 would lose digits here.
  Tensor x_all = random_tensor({2, 7, 96}, 21, 3.0f);
  for (int64_t i = 0; i < x_all.numel(); ++i) x_all.data_as<float>()[i] += 100.0f;
  Tensor x = x_all.slice_cols(16, 64).slice_rows(1, 5);
  TestWeight gamma("norm.weight", {64}, DType::BF16, 22), beta("norm.bias", {64}, DType::F32, 23);
  const std::vector<float> g = gamma.w.dequantize(), b = beta.w.dequantize();
  Tensor y = filled_tensor({2, 5, 64}, 0.0f);
  layer_norm(kF32, x, y, 1e-6f, nullptr, nullptr);
  expect_near_all(reference_layer_norm(x, 1e-6f, nullptr, nullptr), y, 1e-5, "plain");
  layer_norm(kF32, x, y, 1e-5f, &gamma.w, &beta.w);
  expect_near_all(reference_layer_norm(x, 1e-5f, &g, &b), y, 1e-5, "affine");
  TestWeight narrow_gamma("norm.weight", {60}, DType::F32, 24);
  EXPECT_THROW(layer_norm(kF32, x, y, 1e-6f, &narrow_gamma.w, nullptr), Error) << "gamma width";
  Tensor narrow = y.slice_cols(0, 60);
  EXPECT_THROW(layer_norm(kF32, x, narrow, 1e-6f, nullptr, nullptr), Error);
}

// A 1-D parameter in a block type: Weight::rows() counts its elements as rows of one
// column, which no block type can decode row by row; the kernels decode it as one row.
TEST(CpuNorms, QuantizedOneDimensionalParameters) {
  Tensor x = random_tensor({1, 3, 64}, 25);
  TestWeight gamma("norm.weight", {64}, DType::Q8_0, 26), beta("norm.bias", {64}, DType::Q4_0, 27);
  std::vector<float> g(64), b(64);
  dequantize_to_f32(DType::Q8_0, gamma.bytes, g);
  dequantize_to_f32(DType::Q4_0, beta.bytes, b);
  Tensor y = filled_tensor({1, 3, 64}, 0.0f);
  layer_norm(kF32, x, y, 1e-6f, &gamma.w, &beta.w);
  expect_near_all(reference_layer_norm(x, 1e-6f, &g, &b), y, 1e-5, "q8_0 gamma, q4_0 beta");
}

TEST(CpuNorms, UnsupportedParameterNamesTheOpAndTensor) {
  Tensor x = random_tensor({1, 3, 64}, 25);
  Tensor y = filled_tensor({1, 3, 64}, 0.0f);
  TestWeight gamma("norm.weight", {64}, DType::F32, 26);
  gamma.w.unsupported = "block scales of an unknown layout";
  try {
    layer_norm(kF32, x, y, 1e-6f, &gamma.w, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "layer_norm: gamma 'norm.weight': block scales of an unknown layout");
  }
}

TEST(CpuNorms, LayerNormModulate) {
  Tensor x = random_tensor({2, 9, 40}, 31);
  Tensor mod = random_tensor({2, 6, 40}, 32, 0.3f);
  Tensor y_all = filled_tensor({2, 12, 40}, kSentinel);
  Tensor y = y_all.slice_rows(3, 9);
  layer_norm_modulate(kF32, x, mod, 0, 1, 1e-6f, y);
  expect_near_all(reference_layer_norm(x, 1e-6f, nullptr, nullptr, &mod, 0, 1), y, 1e-5, "modulate");
  EXPECT_EQ(sentinels(y_all), y_all.numel() - y.numel());
  Tensor mod1 = mod.slice_batch(1, 1);  // one modulation for every batch item
  layer_norm_modulate(kF32, x, mod1, 4, 3, 1e-6f, y);
  expect_near_all(reference_layer_norm(x, 1e-6f, nullptr, nullptr, &mod1, 4, 3), y, 1e-5, "broadcast mod");
  EXPECT_THROW(layer_norm_modulate(kF32, x, mod, 0, 6, 1e-6f, y), Error) << "chunk out of range";
  EXPECT_THROW(layer_norm_modulate(kF32, x, random_tensor({3, 6, 40}, 1), 0, 1, 1e-6f, y), Error);
}

TEST(CpuNorms, RmsNormPerHeadInPlaceOnASlice) {
  // q of a fused qkv buffer, normalised per head of 16 in place (Flux's query norm).
  Tensor qkv = random_tensor({2, 6, 3 * 48}, 41, 2.0f);
  Tensor q = qkv.slice_cols(0, 48);
  const std::vector<double> before = values(q);
  TestWeight scale("attn.norm.query_norm.scale", {16}, DType::F32, 42);
  const std::vector<float> s = scale.w.dequantize();
  std::vector<double> want(before.size());
  for (size_t row = 0; row < before.size() / 48; ++row)
    for (size_t h = 0; h < 3; ++h) {
      const double* in = &before[row * 48 + h * 16];
      double ms = 0;
      for (int j = 0; j < 16; ++j) ms += in[j] * in[j];
      const double rr = 1.0 / std::sqrt(ms / 16 + 1e-6);
      for (int j = 0; j < 16; ++j) want[row * 48 + h * 16 + size_t(j)] = in[j] * rr * s[size_t(j)];
    }
  const std::vector<double> kv_before = values(qkv.slice_cols(48, 96));
  rms_norm(kF32, q, q, scale.w, 16, 1e-6f);
  expect_near_all(want, q, 1e-5, "rms_norm");
  EXPECT_EQ(values(qkv.slice_cols(48, 96)), kv_before) << "k and v untouched";
  EXPECT_THROW(rms_norm(kF32, q, q, scale.w, 20, 1e-6f), Error) << "group does not divide";
  EXPECT_THROW(rms_norm(kF32, q, q, scale.w, 48, 1e-6f), Error) << "scale is not [group]";
}

// ---- rope

TEST(CpuRope, RotatesPairsPerHeadWithBroadcastTable) {
  const int64_t heads = 3, d = 8;
  Tensor x_all = random_tensor({2, 5, 2 * heads * d}, 51);
  Tensor x = x_all.slice_cols(heads * d, heads * d);  // k of a [q | k] buffer
  for (int64_t tb : {int64_t(1), int64_t(2)}) {
    Tensor table = random_tensor({tb, 5, d}, 52 + uint32_t(tb));
    const std::vector<double> before = values(x);
    std::vector<double> want(before.size());
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t l = 0; l < 5; ++l)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t p = 0; p < d / 2; ++p) {
            const float* t = table.row<const float>(tb == 1 ? 0 : b, l);
            const size_t i = size_t((b * 5 + l) * heads * d + h * d + 2 * p);
            want[i] = t[2 * p] * before[i] - t[2 * p + 1] * before[i + 1];
            want[i + 1] = t[2 * p + 1] * before[i] + t[2 * p] * before[i + 1];
          }
    rope(kF32, x, table, heads);
    expect_near_all(want, x, 1e-6, fmt::format("table batch {}", tb));
  }
  EXPECT_THROW(rope(kF32, x, random_tensor({1, 5, 6}, 1), heads), Error);
  EXPECT_THROW(rope(kF32, x, random_tensor({1, 4, 8}, 1), heads), Error);
  EXPECT_THROW(rope(kF32, x, random_tensor({1, 5, 8}, 1), 5), Error);
}

// ---- attention

// Full softmax in double, per batch item and head.
std::vector<double> reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                                        std::span<const int64_t> kv_lens) {
  const int64_t c = q.cols(), d = c / heads, lq = q.rows();
  std::vector<double> out(size_t(q.batch() * lq * c), 0.0);
  for (int64_t b = 0; b < q.batch(); ++b) {
    const int64_t keys = kv_lens.empty() ? k.rows() : kv_lens[size_t(b)];
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < lq; ++i) {
        if (keys == 0) continue;
        std::vector<double> s(static_cast<size_t>(keys));
        double mx = -1e300;
        for (int64_t j = 0; j < keys; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += double(q.row<const float>(b, i)[h * d + e]) * k.row<const float>(b, j)[h * d + e];
          s[size_t(j)] = dot / std::sqrt(double(d));
          mx = std::max(mx, s[size_t(j)]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t e = 0; e < d; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < keys; ++j) acc += s[size_t(j)] * v.row<const float>(b, j)[h * d + e];
          out[size_t((b * lq + i) * c + h * d + e)] = acc / sum;
        }
      }
  }
  return out;
}

void check_attention(int64_t batch, int64_t lq, int64_t lk, int64_t heads, int64_t d, std::vector<int64_t> kv_lens,
                     float sigma) {
  const std::string what = fmt::format("B {} Lq {} Lk {} H {} D {}", batch, lq, lk, heads, d);
  const int64_t c = heads * d;
  // q, k, v as column slices of fused buffers, as a joint attention block produces them.
  Tensor qkv_q = random_tensor({batch, lq, 3 * c}, 61, sigma);
  Tensor kv = random_tensor({batch, lk, 2 * c + 4}, 62, sigma);
  Tensor q = qkv_q.slice_cols(0, c), k = kv.slice_cols(4, c), v = kv.slice_cols(4 + c, c);
  Tensor out_all = filled_tensor({batch, lq + 3, c + 5}, kSentinel);
  Tensor out = out_all.slice_cols(5, c).slice_rows(3, lq);
  attention(kF32, q, k, v, out, heads, kv_lens);
  expect_near_all(reference_attention(q, k, v, heads, kv_lens), out, 5e-5, what);
  EXPECT_EQ(sentinels(out_all), out_all.numel() - out.numel()) << what;
}

TEST(CpuAttention, MatchesFullSoftmax) {
  check_attention(2, 150, 300, 3, 16, {}, 1.0f);   // two query tiles, two key tiles, ragged
  check_attention(1, 300, 40, 2, 32, {}, 1.0f);    // more queries than keys
  check_attention(2, 1, 513, 4, 8, {}, 1.0f);      // a single query row
}

TEST(CpuAttention, PeakedScoresRescaleAcrossKeyTiles) {
  // Large scores: the running max changes between key tiles and the accumulator must be
  // rescaled; an error there shows as a wrong output, not a small one.
  check_attention(1, 65, 600, 2, 16, {}, 3.0f);
}

TEST(CpuAttention, KvLensMaskKeys) {
  check_attention(3, 20, 300, 2, 16, {300, 137, 0}, 1.0f);
  check_attention(2, 64, 256, 1, 8, {1, 256}, 1.0f);
}

// The log-sum-exp output is what ring attention merges with: attention over the first and
// the second part of the keys, merged by their lse, equals attention over all of them, and
// each lse matches ln Σ exp(scaled scores) computed directly (−inf for a row without keys).
TEST(CpuAttention, LogSumExpMergesPartialResults) {
  const int64_t B = 2, lq = 70, lk = 300, heads = 2, d = 16, c = heads * d, split = 130;
  const Tensor q = random_tensor({B, lq, c}, 71, 2.0f), k = random_tensor({B, lk, c}, 72), v = random_tensor({B, lk, c}, 73);
  Tensor whole = random_tensor({B, lq, c}, 0), whole_lse = random_tensor({B, lq, heads}, 0);
  attention(kF32, q, k, v, whole, heads, {}, &whole_lse);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < lq; i += 23)
      for (int64_t h = 0; h < heads; ++h) {
        double mx = -1e300, sum = 0;
        std::vector<double> s(static_cast<size_t>(lk));
        for (int64_t j = 0; j < lk; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += double(q.row<const float>(b, i)[h * d + e]) * k.row<const float>(b, j)[h * d + e];
          mx = std::max(mx, s[size_t(j)] = dot / std::sqrt(double(d)));
        }
        for (double x : s) sum += std::exp(x - mx);
        EXPECT_NEAR(whole_lse.row<const float>(b, i)[h], mx + std::log(sum), 1e-4);
      }
  Tensor first = random_tensor({B, lq, c}, 0), first_lse = random_tensor({B, lq, heads}, 0);
  Tensor second = random_tensor({B, lq, c}, 0), second_lse = random_tensor({B, lq, heads}, 0);
  attention(kF32, q, k.slice_rows(0, split), v.slice_rows(0, split), first, heads, {}, &first_lse);
  attention(kF32, q, k.slice_rows(split, lk - split), v.slice_rows(split, lk - split), second, heads, {}, &second_lse);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < lq; ++i)
      for (int64_t h = 0; h < heads; ++h) {
        const double a = first_lse.row<const float>(b, i)[h], t = second_lse.row<const float>(b, i)[h];
        const double m = std::max(a, t), wa = std::exp(a - m), wt = std::exp(t - m);
        for (int64_t e = 0; e < d; ++e) {
          const double merged = (first.row<const float>(b, i)[h * d + e] * wa + second.row<const float>(b, i)[h * d + e] * wt) / (wa + wt);
          EXPECT_NEAR(merged, whole.row<const float>(b, i)[h * d + e], 2e-5);
        }
        EXPECT_NEAR(m + std::log(wa + wt), whole_lse.row<const float>(b, i)[h], 1e-4);
      }
  const std::vector<int64_t> none{0, 0};
  attention(kF32, q, k, v, first, heads, none, &first_lse);
  EXPECT_EQ(first_lse.row<const float>(1, 5)[1], -std::numeric_limits<float>::infinity());
  Tensor bad_lse = random_tensor({B, lq, heads + 1}, 0);
  EXPECT_THROW(attention(kF32, q, k, v, first, heads, {}, &bad_lse), Error);
}

TEST(CpuAttention, ShapeErrors) {
  Tensor q = random_tensor({2, 4, 12}, 1), k = random_tensor({2, 6, 12}, 2), v = random_tensor({2, 6, 12}, 3);
  Tensor out = random_tensor({2, 4, 12}, 4);
  EXPECT_THROW(attention(kF32, q, k, v, out, 5, {}), Error);
  EXPECT_THROW(attention(kF32, q, k, random_tensor({2, 5, 12}, 3), out, 3, {}), Error);
  EXPECT_THROW(attention(kF32, q, random_tensor({1, 6, 12}, 3), random_tensor({1, 6, 12}, 3), out, 3, {}), Error);
  const std::vector<int64_t> too_long = {6, 7}, one = {6};
  EXPECT_THROW(attention(kF32, q, k, v, out, 3, too_long), Error);
  EXPECT_THROW(attention(kF32, q, k, v, out, 3, one), Error);
  Tensor out_bad = random_tensor({2, 5, 12}, 4);
  EXPECT_THROW(attention(kF32, q, k, v, out_bad, 3, {}), Error);
}

// ---- the vectorised helpers, at every length so that each vector width and tail runs

TEST(CpuHelpers, ExpAndMaxMatchTheScalarDefinitions) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-90.0f, 90.0f);
  for (int64_t n = 1; n <= 41; ++n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = dist(rng);
    std::vector<float> e = v, shifted = v;
    detail::exp_inplace(e.data(), n);
    const float max = detail::max_of(v.data(), n);
    EXPECT_EQ(max, *std::max_element(v.begin(), v.end())) << n;
    const float sum = detail::exp_shifted_sum(shifted.data(), n, max);
    double want_sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double x = std::clamp(double(v[size_t(i)]), -87.0, 88.0);
      EXPECT_NEAR(e[size_t(i)], std::exp(x), 3e-7 * std::exp(x)) << "n " << n << " x " << v[size_t(i)];
      const float scalar = detail::fast_exp(v[size_t(i)]);  // the same up to FMA rounding
      EXPECT_NEAR(e[size_t(i)], scalar, 2.5e-7 * scalar) << "vector and scalar paths differ";
      const double ws = std::exp(std::max(double(v[size_t(i)] - max), -87.0));
      EXPECT_NEAR(shifted[size_t(i)], ws, 3e-7 * ws);
      want_sum += ws;
    }
    EXPECT_NEAR(sum, want_sum, 1e-6 * want_sum) << n;
  }
  float special[4] = {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(),
                      std::numeric_limits<float>::infinity(), 0.0f};
  detail::exp_inplace(special, 4);
  EXPECT_TRUE(std::isnan(special[0]));
  EXPECT_GE(special[1], 0.0f);
  EXPECT_LT(special[1], 1e-37f);
  EXPECT_TRUE(std::isfinite(special[2]));
  EXPECT_EQ(special[3], 1.0f);
}

// Ranks that run as threads of one process call the kernels at once: the one worker pool
// serves one caller at a time and the others run on their own thread, with equal results.
TEST(CpuHelpers, ConcurrentCallersGetTheSameResults) {
  TestWeight w("w", {96, 128}, DType::Q8_0, 3);
  Tensor x = random_tensor({2, 64, 128}, 4);
  Tensor want = filled_tensor({2, 64, 96}, 0.0f);
  linear(kF32, x, w.w, nullptr, want);
  std::vector<Tensor> got;
  for (int i = 0; i < 4; ++i) got.push_back(filled_tensor({2, 64, 96}, 0.0f));
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i)
    callers.emplace_back([&, i] {
      for (int rep = 0; rep < 5; ++rep) linear(kF32, x, w.w, nullptr, got[size_t(i)]);
    });
  for (auto& t : callers) t.join();
  for (const Tensor& g : got) EXPECT_EQ(values(g), values(want));
}

// ---- activations and elementwise

TEST(CpuPointwise, GeluGeluTanhAndSilu) {
  Tensor x = random_tensor({2, 3, 50}, 71, 4.0f);
  float* p = x.data_as<float>();
  p[0] = 0.0f, p[1] = 30.0f, p[2] = -30.0f, p[3] = 1e-5f, p[4] = -200.0f, p[5] = 200.0f;
  std::vector<double> tanh_want, silu_want;
  for (double v : values(x)) {
    tanh_want.push_back(0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))));
    silu_want.push_back(v / (1.0 + std::exp(-v)));
  }
  Tensor y = filled_tensor({2, 3, 50}, 0.0f);
  gelu_tanh(kF32, x, y);
  expect_near_all(tanh_want, y, 1e-6, "gelu_tanh");
  std::vector<double> exact;
  for (double v : values(x)) exact.push_back(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
  gelu(kF32, x, y);  // the exact GELU (torch's default), Wan 2.1 I2V's image embedding
  expect_near_all(exact, y, 1e-6, "gelu");
  silu(kF32, x, y);
  expect_near_all(silu_want, y, 1e-6, "silu");
  silu(kF32, x, x);  // in place
  expect_near_all(silu_want, x, 1e-6, "silu in place");
  Tensor narrow = y.slice_cols(0, 49);
  EXPECT_THROW(silu(kF32, x, narrow), Error);
}

TEST(CpuElementwise, AddBroadcastsBatch) {
  Tensor a = random_tensor({3, 4, 20}, 81), b = random_tensor({3, 4, 20}, 82), b1 = random_tensor({1, 4, 20}, 83);
  std::vector<double> want = values(a), want1 = values(a);
  const std::vector<double> bv = values(b), b1v = values(b1);
  for (size_t i = 0; i < want.size(); ++i) want[i] += bv[i], want1[i] += b1v[i % b1v.size()];
  Tensor y = filled_tensor({3, 4, 20}, 0.0f);
  add(kF32, a, b, y);
  expect_near_all(want, y, 1e-7, "add");
  add(kF32, a, b1, a);  // broadcast, in place
  expect_near_all(want1, a, 1e-7, "add broadcast");
  EXPECT_THROW(add(kF32, a, random_tensor({2, 4, 20}, 1), y), Error);
  EXPECT_THROW(add(kF32, a, random_tensor({3, 4, 21}, 1), y), Error);
}

TEST(CpuElementwise, GatedAddOnARowSlice) {
  Tensor x_all = random_tensor({2, 10, 16}, 91);
  Tensor x = x_all.slice_rows(4, 6);  // the image rows of a joint [txt | img] sequence
  Tensor y = random_tensor({2, 6, 16}, 92), mod = random_tensor({2, 6, 16}, 93);
  std::vector<double> want = values(x);
  const std::vector<double> before_txt = values(x_all.slice_rows(0, 4));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t j = 0; j < 16; ++j)
        want[size_t((b * 6 + r) * 16 + j)] += double(mod.row<const float>(b, 2)[j]) * y.row<const float>(b, r)[j];
  gated_add(kF32, x, y, mod, 2);
  expect_near_all(want, x, 1e-6, "gated_add");
  EXPECT_EQ(values(x_all.slice_rows(0, 4)), before_txt);
  EXPECT_THROW(gated_add(kF32, x, y, mod, -1), Error);
  EXPECT_THROW(gated_add(kF32, x, random_tensor({2, 5, 16}, 1), mod, 0), Error);
}

TEST(CpuElementwise, CopyBetweenViews) {
  Tensor src_all = random_tensor({2, 8, 30}, 101);
  Tensor src = src_all.slice_cols(5, 20).slice_rows(1, 6);
  Tensor dst_all = filled_tensor({2, 6, 25}, kSentinel);
  Tensor dst = dst_all.slice_cols(2, 20);
  copy(kF32, src, dst);
  EXPECT_EQ(values(dst), values(src));
  EXPECT_EQ(sentinels(dst_all), dst_all.numel() - dst.numel());
  Tensor contiguous = filled_tensor({2, 6, 20}, 0.0f), back = filled_tensor({2, 6, 20}, 0.0f);
  copy(kF32, src, contiguous);
  copy(kF32, contiguous, back);
  EXPECT_EQ(values(back), values(src));
  EXPECT_THROW(copy(kF32, src, src_all), Error);
}

TEST(CpuElementwise, RoundToBf16MatchesTheCodec) {
  Tensor t = random_tensor({3, 40}, 111, 10.0f);
  float* p = t.data_as<float>();
  p[0] = std::numeric_limits<float>::quiet_NaN();
  p[1] = std::numeric_limits<float>::infinity();
  p[2] = std::bit_cast<float>(0x3F808000u);  // a tie: rounds to even (down)
  p[3] = std::bit_cast<float>(0x3F818000u);  // a tie: rounds to even (up)
  p[4] = 3.4e38f;                            // rounds up to infinity
  std::vector<float> before(p, p + t.numel());
  round_to_bf16(kF32, t);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float want = bf16_to_f32(f32_to_bf16(before[size_t(i)]));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(p[i])) << i;
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(p[i]), std::bit_cast<uint32_t>(want)) << i << " from " << before[size_t(i)];
    }
  }
}

}  // namespace
}  // namespace ditrun::kernels::cpu

// ---- the backend

namespace ditrun::runtime {
namespace {

bool all_bf16(std::span<const float> v) {
  for (float f : v)
    if ((std::bit_cast<uint32_t>(f) & 0xFFFFu) != 0) return false;
  return true;
}

Weight plain_weight(std::string name, Shape shape, DType storage, std::span<const uint8_t> bytes) {
  Weight w;
  w.name = std::move(name);
  w.shape = std::move(shape);
  w.storage = storage;
  w.bytes = bytes;
  return w;
}

std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

TEST(CpuBackend, MemoryCopiesStreamsAndNames) {
  auto be = make_cpu_backend({Precision::F32, 2});
  EXPECT_EQ(be->name(), "cpu (2 threads, OpenBLAS)");
  EXPECT_EQ(make_cpu_backend({Precision::F32, 1})->name(), "cpu (1 thread, OpenBLAS)");
  EXPECT_THROW(make_cpu_backend({Precision::F32, -1}), Error);
  EXPECT_EQ(be->device(), (Device{DeviceKind::Cpu, 0}));
  EXPECT_EQ(be->activation_dtype(), DType::F32);
  EXPECT_EQ(precision_name(Precision::BF16), "bf16");
  EXPECT_EQ(precision_name(be->precision()), "f32");
  Tensor t = be->zeros({2, 3, 5});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(t.data_as<float>()[i], 0.0f);
  const std::vector<float> host = random_values(30, 1);
  be->upload(host, t, be->compute_stream());
  std::vector<float> back(8);
  be->download(t.slice_cols(1, 2).slice_rows(1, 2), back, be->compute_stream());  // a view comes back packed
  for (int b = 0; b < 2; ++b)
    for (int r = 0; r < 2; ++r)
      for (int j = 0; j < 2; ++j) EXPECT_EQ(back[size_t(b * 4 + r * 2 + j)], host[size_t(b * 15 + (r + 1) * 5 + j + 1)]);
  Tensor view = t.slice_cols(0, 4);
  EXPECT_THROW(be->upload(host, view, be->compute_stream()), Error);
  Stream s = be->create_stream();
  EXPECT_NE(s.id, be->compute_stream().id);
  Event e = be->record_event(s);
  be->wait_event(be->compute_stream(), e);
  be->synchronize(s);
}

TEST(CpuBackend, LoadWeightIsZeroCopyAndDequantizeReshapes) {
  auto be = make_cpu_backend();
  std::vector<float> v = random_values(64, 2);
  std::vector<uint8_t> bytes(64 * 2);
  quantize_from_f32(DType::BF16, v, bytes);
  const Weight w = plain_weight("modulation", {1, 2, 32}, DType::BF16, bytes);
  DeviceWeight dw = be->load_weight(w, be->compute_stream());
  EXPECT_EQ(dw.bytes.data(), bytes.data());
  Tensor t = be->dequantize(dw, {2, 1, 32});
  EXPECT_EQ(t.shape(), (Shape{2, 1, 32}));
  for (int i = 0; i < 64; ++i) EXPECT_EQ(t.data_as<float>()[i], bf16_to_f32(f32_to_bf16(v[size_t(i)])));
  EXPECT_THROW(be->dequantize(dw, {2, 31}), Error);
}

// BF16 mode rounds every op's output to bf16 values; the results stay within bf16 error of
// F32 mode and differ from it measurably.
TEST(CpuBackend, Bf16PrecisionRoundsEveryOutput) {
  auto f32 = make_cpu_backend({Precision::F32, 2});
  auto bf16 = make_cpu_backend({Precision::BF16, 2});
  const int64_t n = 48, k = 128;
  std::vector<float> wv = random_values(size_t(n * k), 3);
  std::vector<uint8_t> wbytes(wv.size() * 4);
  std::memcpy(wbytes.data(), wv.data(), wbytes.size());
  const Weight w = plain_weight("w", {n, k}, DType::F32, wbytes);
  const std::vector<float> xv = random_values(size_t(2 * 5 * k), 4);

  std::vector<float> results[2];
  Backend* backends[2] = {f32.get(), bf16.get()};
  for (int i = 0; i < 2; ++i) {
    Backend& be = *backends[i];
    Tensor x = be.empty({2, 5, k});
    be.upload(xv, x, be.compute_stream());
    Tensor y = be.empty({2, 5, n}), z = be.empty({2, 5, n});
    be.linear(x, be.load_weight(w, be.compute_stream()), nullptr, y);
    be.gelu_tanh(y, z);
    be.layer_norm(z, z, 1e-6f, nullptr, nullptr);
    results[i].resize(size_t(y.numel() * 2));
    be.download(y, std::span<float>(results[i]).first(size_t(y.numel())), be.compute_stream());
    be.download(z, std::span<float>(results[i]).last(size_t(z.numel())), be.compute_stream());
  }
  EXPECT_FALSE(all_bf16(results[0]));
  EXPECT_TRUE(all_bf16(results[1]));
  // Errors relative to the outputs' RMS: a dot product of bf16 operands errs by ~2^-9 of
  // its terms' magnitudes, not of its (possibly cancelled) sum.
  double worst = 0;
  for (int half = 0; half < 2; ++half) {
    const size_t begin = half * results[0].size() / 2, end = (half + 1) * results[0].size() / 2;
    double rms = 0;
    for (size_t i = begin; i < end; ++i) rms += double(results[0][i]) * results[0][i];
    rms = std::sqrt(rms / double(end - begin));
    for (size_t i = begin; i < end; ++i) worst = std::max(worst, std::abs(double(results[0][i]) - results[1][i]) / rms);
  }
  EXPECT_GT(worst, 1e-3) << "BF16 mode should differ from F32 mode";
  EXPECT_LT(worst, 5e-2) << "BF16 mode should stay within bf16 error of F32 mode";
}

TEST(CpuBackend, OpsNameThemselvesInErrors) {
  auto be = make_cpu_backend();
  Tensor x = be->zeros({1, 4, 8}), y = be->zeros({1, 4, 6});
  try {
    be->gelu_tanh(x, y);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "gelu_tanh: x [1, 4, 8] and y [1, 4, 6] differ in shape");
  }
  DeviceWeight unloaded;
  EXPECT_THROW(be->linear(x, unloaded, nullptr, y), Error);
}

}  // namespace
}  // namespace ditrun::runtime
