// Quantize -> dequantize error of every type ditrun can write, measured the way ggml's
// tests/test-quantize-fns.cpp does (docs/formats.md 2.4): data 0.1 + 2*cos(i + offset),
// n = 4096, metric sqrt(sum diff^2) / n (RMSE / sqrt(n), not a true RMSE), and ggml's
// thresholds. Further distributions check robustness: no NaN/Inf, bounded error relative
// to the data's range.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/dtype.h"

namespace ditrun {
namespace {

constexpr int64_t kTestSize = 32 * 128;  // ggml's test_size

std::vector<float> ggml_synthetic(int64_t n, float offset) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = 0.1f + 2.0f * std::cos(float(i) + offset);
  return v;
}

std::vector<float> round_trip(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(size_t(dtype_bytes(t, int64_t(x.size()), dtype_name(t))));
  quantize_from_f32(t, x, q);
  std::vector<float> y(x.size());
  dequantize_to_f32(t, q, y);
  return y;
}

// ggml's array_rmse.
double array_rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += double(a[i] - b[i]) * double(a[i] - b[i]);
  return std::sqrt(sum) / double(a.size());
}

// ggml's MAX_QUANTIZATION_TOTAL_ERROR* by type.
double ggml_threshold(DType t) {
  switch (t) {
    case DType::Q2_K: return 0.0075;
    case DType::Q3_K: return 0.0040;
    default: return 0.002;
  }
}

// Every type with a quantizer in the dtype table, except the plain float formats (exact or
// covered by float_codecs_test).
std::vector<DType> quantizable_types() {
  std::vector<DType> out;
  for (const auto& row : all_dtypes())
    if (row.from_f32 && row.kind == DTypeKind::Quantized) out.push_back(row.type);
  return out;
}

std::string type_param_name(const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); }

class QuantizeRoundTrip : public ::testing::TestWithParam<DType> {};

TEST_P(QuantizeRoundTrip, MeetsGgmlTotalErrorThreshold) {
  const DType t = GetParam();
  double worst = 0;
  for (float offset : {0.0f, 1.0f, 17.5f, 1000.0f}) {
    const auto x = ggml_synthetic(kTestSize, offset);
    worst = std::max(worst, array_rmse(x, round_trip(t, x)));
  }
  // Printed so the measured value is visible next to ggml's bound.
  std::printf("[ rmse     ] %-7s %.6f (threshold %.4f)\n", std::string(dtype_name(t)).c_str(), worst,
              ggml_threshold(t));
  EXPECT_LT(worst, ggml_threshold(t)) << dtype_name(t);
}

// Error relative to the data range, for shapes of data ggml's test does not cover. The
// bound is loose (a fraction of one quantization step at the type's bit width) because the
// point is to catch broken encoders, not to grade them.
double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y, int64_t block) {
  // Normalise each block's error by that block's range, so one large block cannot hide
  // garbage in a small one.
  double worst = 0;
  for (size_t b = 0; b < x.size(); b += size_t(block)) {
    float lo = x[b], hi = x[b];
    double sum = 0;
    for (size_t i = b; i < b + size_t(block); ++i) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
      sum += double(x[i] - y[i]) * double(x[i] - y[i]);
    }
    const double range = std::max(double(hi - lo), double(std::max(std::fabs(lo), std::fabs(hi))));
    if (range == 0) continue;
    worst = std::max(worst, std::sqrt(sum / double(block)) / range);
  }
  return worst;
}

// Bits per element of the codes (not counting scales), which sets the expected step size.
int code_bits(DType t) {
  switch (t) {
    case DType::Q2_K: return 2;
    case DType::Q3_K: return 3;
    case DType::Q4_0: case DType::Q4_1: case DType::Q4_K: case DType::IQ4_NL: return 4;
    case DType::Q5_0: case DType::Q5_1: case DType::Q5_K: return 5;
    case DType::Q6_K: return 6;
    default: return 8;
  }
}

void expect_finite(DType t, const std::vector<float>& y, const char* what) {
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_TRUE(std::isfinite(y[i])) << dtype_name(t) << " " << what << ": element " << i << " is " << y[i];
}

TEST_P(QuantizeRoundTrip, OtherDistributionsStayFiniteAndBounded) {
  const DType t = GetParam();
  const int64_t block = dtype_info(t).block_elems;
  // A uniformly rounded code has RMS error step/sqrt(12) with step = range / (2^bits - 1);
  // allow 3x that for scale quantization and the non-uniform codebooks.
  const double bound = 3.0 / (double((1 << code_bits(t)) - 1) * std::sqrt(12.0));
  std::mt19937 rng(1234);

  std::vector<float> gaussian(kTestSize);
  std::normal_distribution<float> normal(0.0f, 0.02f);  // typical weight scale
  for (auto& v : gaussian) v = normal(rng);

  std::vector<float> shifted(kTestSize);  // all positive, offset from zero
  std::uniform_real_distribution<float> uni(3.0f, 5.0f);
  for (auto& v : shifted) v = uni(rng);

  // Blocks whose magnitudes span decades, 1e-2 .. 1e3 (each block has its own scale). Far
  // smaller blocks are out of scope: their fp16 scales underflow, in ggml as here.
  std::vector<float> decades(kTestSize);
  for (int64_t i = 0; i < kTestSize; ++i) {
    const float block_scale = std::pow(10.0f, float((i / block) % 6) - 2.0f);
    decades[size_t(i)] = block_scale * normal(rng) * 50.0f;
  }

  // Large dynamic range inside each block: log-uniform magnitudes over 1e-4 .. 1, random
  // signs. The small values must round to (near) zero without disturbing the large ones.
  std::vector<float> wide(kTestSize);
  std::uniform_real_distribution<float> decade(-4.0f, 0.0f);
  for (auto& v : wide) v = std::pow(10.0f, decade(rng)) * (rng() % 2 ? 1.0f : -1.0f);

  // One huge outlier per block among small values (typical of attention projections).
  std::vector<float> outliers = gaussian;
  for (int64_t b = 0; b < kTestSize; b += block) outliers[size_t(b + (b / block) % block)] = 3.0f;

  const std::pair<const char*, const std::vector<float>*> cases[] = {
      {"gaussian", &gaussian}, {"shifted", &shifted}, {"decades", &decades},
      {"wide", &wide},         {"outliers", &outliers}};
  for (const auto& [what, data] : cases) {
    const auto y = round_trip(t, *data);
    expect_finite(t, y, what);
    // Outlier blocks are dominated by the outlier; judge them only for finiteness and by a
    // bound relative to the outlier-inclusive range, which the block-range metric already is.
    EXPECT_LT(relative_rms_error(*data, y, block), bound) << dtype_name(t) << " " << what;
  }
}

TEST_P(QuantizeRoundTrip, ConstantAndZeroBlocks) {
  const DType t = GetParam();
  for (float c : {0.0f, 1.0f, -2.5f, 0.01f, 1000.0f}) {
    const std::vector<float> x(size_t(kTestSize), c);
    const auto y = round_trip(t, x);
    expect_finite(t, y, "constant");
    for (size_t i = 0; i < y.size(); ++i) {
      if (c == 0.0f) {
        ASSERT_EQ(y[i], 0.0f) << dtype_name(t) << " element " << i;
      } else {
        // fp16 scales carry ~11 bits; a constant must come back within a few of its ulps.
        ASSERT_NEAR(y[i], c, std::fabs(c) * 0.01) << dtype_name(t) << " constant " << c << " element " << i;
      }
    }
  }
}

TEST_P(QuantizeRoundTrip, AllZeroBlockBytesDecodeToZero) {
  const DType t = GetParam();
  const int64_t n = dtype_info(t).block_elems * 4;
  std::vector<uint8_t> zeros(size_t(dtype_bytes(t, n, dtype_name(t))), 0);
  std::vector<float> y(size_t(n), 1.0f);
  dequantize_to_f32(t, zeros, y);
  for (float v : y) ASSERT_EQ(v, 0.0f) << dtype_name(t);
}

INSTANTIATE_TEST_SUITE_P(Quantizable, QuantizeRoundTrip, ::testing::ValuesIn(quantizable_types()), type_param_name);

TEST(QuantizeRoundTrip, CoversEveryWritableBlockType) {
  // If a quantizer is added to the table it joins the parameterised tests automatically;
  // this pins the current set so a silently dropped quantizer is noticed.
  EXPECT_EQ(quantizable_types().size(), 11u);
}

TEST(QuantizeRoundTrip, Q8_0RequantizationIsStable) {
  std::mt19937 rng(99);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(kTestSize);
  for (auto& v : x) v = normal(rng);
  std::vector<uint8_t> q1(size_t(dtype_bytes(DType::Q8_0, kTestSize, "q8_0")));
  quantize_from_f32(DType::Q8_0, x, q1);
  std::vector<float> y1(x.size());
  dequantize_to_f32(DType::Q8_0, q1, y1);
  std::vector<uint8_t> q2(q1.size());
  quantize_from_f32(DType::Q8_0, y1, q2);
  // The decoded values are exactly representable, so encoding them again gives the same
  // bytes: a second quantization pass (e.g. re-saving a file) loses nothing more.
  EXPECT_EQ(q1, q2);
  std::vector<float> y2(x.size());
  dequantize_to_f32(DType::Q8_0, q2, y2);
  EXPECT_EQ(y1, y2);
}

}  // namespace
}  // namespace ditrun
