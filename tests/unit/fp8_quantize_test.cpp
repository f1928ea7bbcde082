// The fp8 weight quantizers: error bounds per scale group, exact zeros, the scale layouts,
// and agreement with the reader side (quant::Weight::dequantize) on the same bytes.
#include "models/quant/fp8_quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "runtime/core/error.h"
#include "runtime/core/float_codecs.h"

namespace ditrun::quant {
namespace {

std::vector<float> random_weights(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (auto& v : w) v = normal(rng);
  // Rows of very different magnitude, so per-row and per-block scales matter.
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) w[size_t(r * cols + c)] *= std::pow(10.0f, float(r % 5) - 2.0f);
  return w;
}

float decode(DType fp8, uint8_t code) { return fp8 == DType::F8_E4M3 ? f8e4m3_to_f32(code) : f8e5m2_to_f32(code); }

// The decoded matrix, computed here from the codes and scales rather than through Weight.
std::vector<float> reference_dequant(const Fp8Quantized& q, int64_t rows, int64_t cols) {
  std::vector<float> out(q.bytes.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = size_t(r * cols + c);
      size_t g = 0;
      if (q.layout == ScaleLayout::PerRow) g = size_t(r);
      if (q.layout == ScaleLayout::PerBlock) g = size_t(r * (cols / q.block) + c / q.block);
      out[i] = decode(q.storage, q.bytes[i]) * q.scales[g];
    }
  return out;
}

// Every element is within `rel` of its group's amax (fp8 keeps 3 mantissa bits for e4m3,
// 2 for e5m2, so rounding moves a value by at most 2^-4 / 2^-3 of itself).
void expect_group_error_within(const std::vector<float>& w, const std::vector<float>& y, int64_t rows, int64_t cols,
                               int64_t group, double rel) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g0 = 0; g0 < cols; g0 += group) {
      float amax = 0;
      for (int64_t c = g0; c < g0 + group; ++c) amax = std::max(amax, std::fabs(w[size_t(r * cols + c)]));
      for (int64_t c = g0; c < g0 + group; ++c) {
        const size_t i = size_t(r * cols + c);
        ASSERT_LE(std::fabs(double(y[i]) - double(w[i])), rel * amax) << "row " << r << " col " << c;
      }
    }
}

Weight weight_from(const Fp8Quantized& q, int64_t rows, int64_t cols) {
  Weight w;
  w.name = "layer.weight";
  w.shape = {rows, cols};
  w.storage = q.storage;
  w.bytes = q.bytes;
  w.encoding = q.layout == ScaleLayout::PerTensor ? Encoding::ScaledFp8 : Encoding::BlockFp8;
  w.scale_layout = q.layout;
  w.scales = q.scales;
  w.scale_block = q.layout == ScaleLayout::PerBlock ? q.block : 0;
  return w;
}

TEST(Fp8Quantize, PerTensorE4M3) {
  const int64_t rows = 16, cols = 96;
  auto w = random_weights(rows, cols, 1);
  const auto q = quantize_fp8_per_tensor(w, rows, cols);
  ASSERT_EQ(q.layout, ScaleLayout::PerTensor);
  ASSERT_EQ(q.scales.size(), 1u);
  float amax = 0;
  for (float v : w) amax = std::max(amax, std::fabs(v));
  EXPECT_EQ(q.scales[0], amax / 448.0f);
  const auto y = reference_dequant(q, rows, cols);
  expect_group_error_within(w, y, rows, cols, cols, 0x1p-4);
  // The whole tensor is one group: check against the tensor amax too.
  for (size_t i = 0; i < w.size(); ++i) ASSERT_LE(std::fabs(y[i] - w[i]), amax * 0x1p-4);
  EXPECT_EQ(weight_from(q, rows, cols).dequantize(), y);
}

TEST(Fp8Quantize, PerTensorE5M2) {
  const int64_t rows = 8, cols = 40;
  auto w = random_weights(rows, cols, 2);
  const auto q = quantize_fp8_per_tensor(w, rows, cols, DType::F8_E5M2);
  ASSERT_EQ(q.storage, DType::F8_E5M2);
  float amax = 0;
  for (float v : w) amax = std::max(amax, std::fabs(v));
  EXPECT_EQ(q.scales[0], amax / 57344.0f);
  const auto y = reference_dequant(q, rows, cols);
  for (size_t i = 0; i < w.size(); ++i) ASSERT_LE(std::fabs(y[i] - w[i]), amax * 0x1p-3);
  EXPECT_EQ(weight_from(q, rows, cols).dequantize(), y);
}

TEST(Fp8Quantize, PerTensorExtremeMapsToFp8Max) {
  std::vector<float> w = {0.5f, -3.0f, 1.0f, 0.0f};
  const auto q = quantize_fp8_per_tensor(w, 2, 2);
  EXPECT_EQ(q.bytes[1], 0xFE);  // -448: the extreme uses the whole range, unsaturated
  EXPECT_EQ(q.bytes[3], 0x00);
  EXPECT_FLOAT_EQ(f8e4m3_to_f32(q.bytes[1]) * q.scales[0], -3.0f);
}

TEST(Fp8Quantize, PerTensorZerosGetScaleOne) {
  const std::vector<float> w(12, 0.0f);
  for (DType t : {DType::F8_E4M3, DType::F8_E5M2}) {
    const auto q = quantize_fp8_per_tensor(w, 3, 4, t);
    EXPECT_EQ(q.scales, std::vector<float>{1.0f});
    for (uint8_t b : q.bytes) EXPECT_EQ(b, 0);
    for (float v : weight_from(q, 3, 4).dequantize()) EXPECT_EQ(v, 0.0f);
  }
}

TEST(Fp8Quantize, BlockwiseE4M3) {
  const int64_t rows = 10, cols = 256;
  auto w = random_weights(rows, cols, 3);
  w[5] = 0.0f;  // exact zeros survive inside a nonzero block
  const auto q = quantize_fp8_blockwise(w, rows, cols);
  ASSERT_EQ(q.layout, ScaleLayout::PerBlock);
  ASSERT_EQ(q.block, 64);
  ASSERT_EQ(q.scales.size(), size_t(rows * cols / 64));
  for (int64_t g = 0; g < rows * cols / 64; ++g) {
    float amax = 0;
    for (int64_t i = 0; i < 64; ++i) amax = std::max(amax, std::fabs(w[size_t(g * 64 + i)]));
    EXPECT_EQ(q.scales[size_t(g)], amax / 448.0f) << "group " << g;
  }
  const auto y = reference_dequant(q, rows, cols);
  expect_group_error_within(w, y, rows, cols, 64, 0x1p-4);
  EXPECT_EQ(y[5], 0.0f);
  EXPECT_EQ(weight_from(q, rows, cols).dequantize(), y);
}

TEST(Fp8Quantize, BlockwiseFallsBackToPerRow) {
  const int64_t rows = 6, cols = 100;  // 100 % 64 != 0
  const auto w = random_weights(rows, cols, 4);
  const auto q = quantize_fp8_blockwise(w, rows, cols);
  ASSERT_EQ(q.layout, ScaleLayout::PerRow);
  ASSERT_EQ(q.scales.size(), size_t(rows));
  EXPECT_EQ(q.block, cols);
  const auto y = reference_dequant(q, rows, cols);
  expect_group_error_within(w, y, rows, cols, cols, 0x1p-4);
  EXPECT_EQ(weight_from(q, rows, cols).dequantize(), y);
}

TEST(Fp8Quantize, BlockwiseCustomBlock) {
  const int64_t rows = 4, cols = 96;
  const auto w = random_weights(rows, cols, 5);
  const auto q = quantize_fp8_blockwise(w, rows, cols, 32);
  ASSERT_EQ(q.layout, ScaleLayout::PerBlock);
  ASSERT_EQ(q.scales.size(), size_t(rows * 3));
  const auto y = reference_dequant(q, rows, cols);
  expect_group_error_within(w, y, rows, cols, 32, 0x1p-4);
  EXPECT_EQ(weight_from(q, rows, cols).dequantize(), y);
}

TEST(Fp8Quantize, BlockwiseZeroGroupsClampScale) {
  const int64_t rows = 2, cols = 128;
  std::vector<float> w(size_t(rows * cols), 0.0f);
  w[200] = 1.0f;  // only the last group is nonzero
  const auto q = quantize_fp8_blockwise(w, rows, cols);
  EXPECT_EQ(q.scales[0], 1e-8f);
  EXPECT_EQ(q.scales[1], 1e-8f);
  EXPECT_EQ(q.scales[2], 1e-8f);
  EXPECT_EQ(q.scales[3], 1.0f / 448.0f);
  const auto y = weight_from(q, rows, cols).dequantize();
  for (size_t i = 0; i < y.size(); ++i) {
    if (i == 200) {
      EXPECT_FLOAT_EQ(y[i], 1.0f);  // 448 * fl(1/448): within an ulp of 1
    } else {
      EXPECT_EQ(y[i], 0.0f) << i;
    }
  }
}

TEST(Fp8Quantize, BlockwiseBf16ScalesAreExactlyStorable) {
  const int64_t rows = 4, cols = 128;
  const auto w = random_weights(rows, cols, 6);
  const auto q = quantize_fp8_blockwise(w, rows, cols, 64, DType::BF16);
  for (float s : q.scales) EXPECT_EQ(bf16_to_f32(f32_to_bf16(s)), s);
  // Rounding the scale can push the extreme just past 448; it saturates, which costs at most
  // a bf16 rounding step, well inside the fp8 bound.
  expect_group_error_within(w, reference_dequant(q, rows, cols), rows, cols, 64, 0x1p-4);
}

TEST(Fp8Quantize, RejectsBadInput) {
  const std::vector<float> w(6, 1.0f);
  EXPECT_THROW(quantize_fp8_per_tensor(w, 2, 4), Error);
  EXPECT_THROW(quantize_fp8_per_tensor(w, 2, 3, DType::BF16), Error);
  EXPECT_THROW(quantize_fp8_blockwise(w, 2, 3, 0), Error);
  std::vector<float> bad = w;
  bad[4] = std::nanf("");
  EXPECT_THROW(quantize_fp8_per_tensor(bad, 2, 3), Error);
  bad[4] = INFINITY;
  EXPECT_THROW(quantize_fp8_blockwise(bad, 2, 3), Error);
}

}  // namespace
}  // namespace ditrun::quant
