// Exhaustive checks of the scalar float conversions. The expected values come from the
// bit-level definitions of each format (sign, biased exponent, mantissa), computed here
// independently of float_codecs.h, so a shared mistake cannot hide in both.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/float_codecs.h"

namespace ditrun {
namespace {

// Value of a small float code with `mant_bits` mantissa bits and `exp_bits` exponent bits,
// assuming the code is finite: (2^mb + m) * 2^(e - bias - mb), subnormals m * 2^(1 - bias - mb).
double small_float_value(uint32_t code, int exp_bits, int mant_bits, int bias) {
  const bool neg = (code >> (exp_bits + mant_bits)) & 1u;
  const int e = int((code >> mant_bits) & ((1u << exp_bits) - 1));
  const int m = int(code & ((1u << mant_bits) - 1));
  const double mag = e == 0 ? std::ldexp(double(m), 1 - bias - mant_bits)
                            : std::ldexp(double((1 << mant_bits) + m), e - bias - mant_bits);
  return neg ? -mag : mag;
}

bool e4m3_is_nan(uint8_t c) { return (c & 0x7F) == 0x7F; }
bool e5m2_is_special(uint8_t c) { return ((c >> 2) & 0x1F) == 0x1F; }

// Brute-force round-to-nearest-even over every finite positive code of a format, saturating
// at the largest finite code; the reference the encoders are checked against.
uint8_t nearest_code(double a, const std::vector<double>& values /* by code, ascending */) {
  if (a >= values.back()) return uint8_t(values.size() - 1);
  size_t hi = 1;
  while (values[hi] < a) ++hi;
  const size_t lo = hi - 1;
  const double dl = a - values[lo], dh = values[hi] - a;
  if (dl < dh) return uint8_t(lo);
  if (dh < dl) return uint8_t(hi);
  return uint8_t(lo % 2 == 0 ? lo : hi);
}

std::vector<double> positive_finite_values(int exp_bits, int mant_bits, int bias, uint32_t last_code) {
  std::vector<double> v;
  for (uint32_t c = 0; c <= last_code; ++c) v.push_back(small_float_value(c, exp_bits, mant_bits, bias));
  return v;
}

// ---- float8 e4m3fn ----------------------------------------------------------------------

TEST(FloatCodecs, E4M3DecodesAll256CodesPerDefinition) {
  int nans = 0;
  for (uint32_t c = 0; c < 256; ++c) {
    const float got = f8e4m3_to_f32(uint8_t(c));
    if (e4m3_is_nan(uint8_t(c))) {
      EXPECT_TRUE(std::isnan(got)) << "code " << c;
      ++nans;
      continue;
    }
    EXPECT_EQ(double(got), small_float_value(c, 4, 3, 7)) << "code " << c;
    EXPECT_EQ(std::signbit(got), (c & 0x80) != 0) << "code " << c;  // -0 stays -0
  }
  EXPECT_EQ(nans, 2);  // only 0x7F and 0xFF
  EXPECT_EQ(f8e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(f8e4m3_to_f32(0xFE), -448.0f);
  EXPECT_EQ(f8e4m3_to_f32(0x01), 0x1p-9f);  // smallest subnormal
  EXPECT_EQ(f8e4m3_to_f32(0x07), 7 * 0x1p-9f);
  EXPECT_EQ(f8e4m3_to_f32(0x08), 0x1p-6f);  // smallest normal
  EXPECT_EQ(f8e4m3_to_f32(0x78), 256.0f);   // e=15 is a normal binade in e4m3fn
}

TEST(FloatCodecs, E4M3EncodeDecodeRoundTripsEveryFiniteCode) {
  for (uint32_t c = 0; c < 256; ++c) {
    if (e4m3_is_nan(uint8_t(c))) continue;
    EXPECT_EQ(f32_to_f8e4m3(f8e4m3_to_f32(uint8_t(c))), c) << "code " << c;
  }
}

TEST(FloatCodecs, E4M3NanAndSaturation) {
  EXPECT_EQ(f32_to_f8e4m3(std::numeric_limits<float>::quiet_NaN()) & 0x7F, 0x7F);
  for (float v : {448.0f, 449.0f, 464.0f, 465.0f, 480.0f, 1e6f, 3.4e38f, std::numeric_limits<float>::infinity()}) {
    EXPECT_EQ(f32_to_f8e4m3(v), 0x7E) << v;
    EXPECT_EQ(f32_to_f8e4m3(-v), 0xFE) << -v;
  }
}

TEST(FloatCodecs, E4M3MidpointsRoundToEven) {
  const auto values = positive_finite_values(4, 3, 7, 0x7E);
  for (uint32_t c = 0; c + 1 < values.size(); ++c) {
    const float mid = float((values[c] + values[c + 1]) / 2);  // exact in f32
    const uint8_t even = uint8_t(c % 2 == 0 ? c : c + 1);
    EXPECT_EQ(f32_to_f8e4m3(mid), even) << "between codes " << c << " and " << c + 1;
    EXPECT_EQ(f32_to_f8e4m3(-mid), 0x80 | even);
    EXPECT_EQ(f32_to_f8e4m3(std::nextafter(mid, 0.0f)), c);
    EXPECT_EQ(f32_to_f8e4m3(std::nextafter(mid, 1e9f)), c + 1);
  }
}

TEST(FloatCodecs, E4M3EncoderMatchesBruteForceNearest) {
  const auto values = positive_finite_values(4, 3, 7, 0x7E);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-14.0f, 10.0f), sign(-1.0f, 1.0f);
  for (int i = 0; i < 200000; ++i) {
    const float v = std::copysign(std::exp2(exponent(rng)), sign(rng));
    const uint8_t want = uint8_t((v < 0 ? 0x80 : 0) | nearest_code(std::fabs(double(v)), values));
    ASSERT_EQ(f32_to_f8e4m3(v), want) << v;
  }
}

// ---- float8 e5m2 ------------------------------------------------------------------------

TEST(FloatCodecs, E5M2DecodesAll256CodesPerDefinition) {
  for (uint32_t c = 0; c < 256; ++c) {
    const float got = f8e5m2_to_f32(uint8_t(c));
    if (e5m2_is_special(uint8_t(c))) {
      if ((c & 3) == 0) {
        EXPECT_TRUE(std::isinf(got)) << "code " << c;
        EXPECT_EQ(std::signbit(got), (c & 0x80) != 0);
      } else {
        EXPECT_TRUE(std::isnan(got)) << "code " << c;
      }
      continue;
    }
    EXPECT_EQ(double(got), small_float_value(c, 5, 2, 15)) << "code " << c;
    EXPECT_EQ(std::signbit(got), (c & 0x80) != 0) << "code " << c;
  }
  EXPECT_EQ(f8e5m2_to_f32(0x7B), 57344.0f);
  EXPECT_EQ(f8e5m2_to_f32(0x01), 0x1p-16f);
  EXPECT_EQ(f8e5m2_to_f32(0x04), 0x1p-14f);
}

TEST(FloatCodecs, E5M2EncodeDecodeRoundTripsEveryFiniteCode) {
  for (uint32_t c = 0; c < 256; ++c) {
    if (e5m2_is_special(uint8_t(c))) continue;
    EXPECT_EQ(f32_to_f8e5m2(f8e5m2_to_f32(uint8_t(c))), c) << "code " << c;
  }
}

TEST(FloatCodecs, E5M2SpecialsAndSaturation) {
  EXPECT_TRUE(std::isnan(f8e5m2_to_f32(f32_to_f8e5m2(std::numeric_limits<float>::quiet_NaN()))));
  // The format has infinities, so an infinite input stays infinite; finite values beyond
  // the largest finite code saturate.
  EXPECT_EQ(f32_to_f8e5m2(std::numeric_limits<float>::infinity()), 0x7C);
  EXPECT_EQ(f32_to_f8e5m2(-std::numeric_limits<float>::infinity()), 0xFC);
  for (float v : {57344.0f, 57345.0f, 61440.0f, 65536.0f, 1e9f, 3.4e38f}) {
    EXPECT_EQ(f32_to_f8e5m2(v), 0x7B) << v;
    EXPECT_EQ(f32_to_f8e5m2(-v), 0xFB) << -v;
  }
}

TEST(FloatCodecs, E5M2MidpointsRoundToEven) {
  const auto values = positive_finite_values(5, 2, 15, 0x7B);
  for (uint32_t c = 0; c + 1 < values.size(); ++c) {
    const float mid = float((values[c] + values[c + 1]) / 2);
    const uint8_t even = uint8_t(c % 2 == 0 ? c : c + 1);
    EXPECT_EQ(f32_to_f8e5m2(mid), even) << "between codes " << c << " and " << c + 1;
    EXPECT_EQ(f32_to_f8e5m2(-mid), 0x80 | even);
    EXPECT_EQ(f32_to_f8e5m2(std::nextafter(mid, 0.0f)), c);
    EXPECT_EQ(f32_to_f8e5m2(std::nextafter(mid, 1e9f)), c + 1);
  }
}

TEST(FloatCodecs, E5M2EncoderMatchesBruteForceNearest) {
  const auto values = positive_finite_values(5, 2, 15, 0x7B);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> exponent(-20.0f, 17.0f), sign(-1.0f, 1.0f);
  for (int i = 0; i < 200000; ++i) {
    const float v = std::copysign(std::exp2(exponent(rng)), sign(rng));
    const uint8_t want = uint8_t((v < 0 ? 0x80 : 0) | nearest_code(std::fabs(double(v)), values));
    ASSERT_EQ(f32_to_f8e5m2(v), want) << v;
  }
}

// ---- IEEE binary16 ----------------------------------------------------------------------

TEST(FloatCodecs, F16DecodesEveryCodePerDefinition) {
  for (uint32_t c = 0; c < 65536; ++c) {
    const float got = f16_to_f32(uint16_t(c));
    if (((c >> 10) & 0x1F) == 0x1F) {
      EXPECT_EQ(std::isinf(got), (c & 0x3FF) == 0) << c;
      EXPECT_EQ(std::isnan(got), (c & 0x3FF) != 0) << c;
      continue;
    }
    ASSERT_EQ(double(got), small_float_value(c, 5, 10, 15)) << c;
    ASSERT_EQ(std::signbit(got), (c & 0x8000) != 0) << c;
  }
}

TEST(FloatCodecs, F16EncodeDecodeRoundTripsAll65536Codes) {
  for (uint32_t c = 0; c < 65536; ++c) {
    const float f = f16_to_f32(uint16_t(c));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f)))) << c;
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), c) << c;  // includes ±0, subnormals and ±inf
  }
}

TEST(FloatCodecs, F16MidpointsRoundToEven) {
  // Every pair of adjacent positive finite codes, including the subnormal/normal boundary.
  for (uint32_t c = 0; c < 0x7BFF; ++c) {
    const double lo = f16_to_f32(uint16_t(c)), hi = f16_to_f32(uint16_t(c + 1));
    const float mid = float((lo + hi) / 2);
    ASSERT_EQ(double(mid), (lo + hi) / 2);
    ASSERT_EQ(f32_to_f16(mid), c % 2 == 0 ? c : c + 1) << "between " << c << " and " << c + 1;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 0.0f)), c);
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 1e9f)), c + 1);
  }
}

TEST(FloatCodecs, F16SubnormalsAndOverflow) {
  EXPECT_EQ(f32_to_f16(0x1p-24f), 0x0001);
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);                          // tie to even (zero)
  EXPECT_EQ(f32_to_f16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_f16(3 * 0x1p-25f), 0x0002);                      // 1.5 units: tie to 2
  EXPECT_EQ(f32_to_f16(-0x1p-24f), 0x8001);
  EXPECT_EQ(f32_to_f16(1e-10f), 0x0000);
  EXPECT_EQ(f32_to_f16(-1e-10f), 0x8000);
  EXPECT_EQ(f32_to_f16(0x1p-14f), 0x0400);                          // smallest normal
  EXPECT_EQ(f32_to_f16(0x3FFp-24f), 0x03FF);                        // largest subnormal
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);                          // tie rounds to even: inf
  EXPECT_EQ(f32_to_f16(1e10f), 0x7C00);
  EXPECT_EQ(f32_to_f16(-1e10f), 0xFC00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits only in the low mantissa bits must not collapse to inf.
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::bit_cast<float>(0x7F800001u)))));
}

// ---- bfloat16 ---------------------------------------------------------------------------

TEST(FloatCodecs, Bf16EncodeDecodeRoundTripsAll65536Codes) {
  for (uint32_t c = 0; c < 65536; ++c) {
    const float f = bf16_to_f32(uint16_t(c));
    ASSERT_EQ(std::bit_cast<uint32_t>(f), c << 16);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f)))) << c;
      continue;
    }
    ASSERT_EQ(f32_to_bf16(f), c) << c;
  }
}

TEST(FloatCodecs, Bf16MidpointsRoundToEven) {
  for (uint32_t c = 0; c < 0x7F7F; ++c) {
    const uint32_t mid_bits = (c << 16) | 0x8000u;  // exactly halfway to code c + 1
    const float mid = std::bit_cast<float>(mid_bits);
    ASSERT_EQ(f32_to_bf16(mid), c % 2 == 0 ? c : c + 1) << c;
    ASSERT_EQ(f32_to_bf16(std::bit_cast<float>(mid_bits - 1)), c);
    ASSERT_EQ(f32_to_bf16(std::bit_cast<float>(mid_bits + 1)), c + 1);
  }
  // The largest finite bf16 rounds up to inf past its midpoint, as IEEE rounding does.
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);
}

TEST(FloatCodecs, Bf16NanStaysNan) {
  // Every NaN payload position, both signs: truncation alone would turn 0x7F800001 into inf.
  for (uint32_t sign : {0u, 0x80000000u})
    for (int bit = 0; bit < 23; ++bit) {
      const float nan = std::bit_cast<float>(sign | 0x7F800000u | (1u << bit));
      ASSERT_TRUE(std::isnan(nan));
      const uint16_t b = f32_to_bf16(nan);
      EXPECT_TRUE(std::isnan(bf16_to_f32(b))) << "payload bit " << bit;
      EXPECT_EQ(b & 0x8000u, sign >> 16);
    }
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
}

// ---- e8m0 -------------------------------------------------------------------------------

TEST(FloatCodecs, E8M0DecodesPowersOfTwo) {
  for (int e = 0; e < 255; ++e) EXPECT_EQ(double(e8m0_to_f32(uint8_t(e))), std::ldexp(1.0, e - 127)) << e;
  EXPECT_TRUE(std::isnan(e8m0_to_f32(0xFF)));
}

// ---- the dtype table's whole-buffer codecs use the same conversions ---------------------

TEST(FloatCodecs, DtypeTableFp8CodecsAgreeWithScalars) {
  std::vector<uint8_t> codes(256);
  for (int c = 0; c < 256; ++c) codes[size_t(c)] = uint8_t(c);
  for (DType t : {DType::F8_E4M3, DType::F8_E5M2}) {
    std::vector<float> decoded(256);
    dequantize_to_f32(t, codes, decoded);
    std::vector<uint8_t> again(256);
    quantize_from_f32(t, decoded, again);
    for (int c = 0; c < 256; ++c) {
      const float want = t == DType::F8_E4M3 ? f8e4m3_to_f32(uint8_t(c)) : f8e5m2_to_f32(uint8_t(c));
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(decoded[size_t(c)]));
        continue;
      }
      EXPECT_EQ(decoded[size_t(c)], want);
      EXPECT_EQ(again[size_t(c)], c) << dtype_name(t) << " code " << c;
    }
  }
}

}  // namespace
}  // namespace ditrun
