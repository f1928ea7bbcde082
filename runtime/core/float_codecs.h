// Scalar conversions between f32 and the narrow float formats stored in checkpoints:
// IEEE binary16, bfloat16, float8 e4m3fn / e5m2 (OCP), and e8m0 (power-of-two scales).
// Decoding is exact; encoding rounds to nearest even. These are the bit-level definitions
// every backend's kernels are tested against.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace ditrun {

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal: value = mant * 2^-24, exactly representable in f32.
    const float v = float(mant) * 0x1p-24f;
    return sign ? -v : v;
  }
  return std::bit_cast<float>(bits);
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7E00u;            // nan
  if (ax >= 0x477FF000u) return sign | 0x7C00u;           // rounds to >= 65520: inf
  if (ax >= 0x38800000u) {                                // normal f16 range
    const uint32_t mant_rounding = ((ax >> 13) & 1u) + 0xFFFu;
    return sign | uint16_t((ax - 0x38000000u + mant_rounding) >> 13);
  }
  // Subnormal or zero: scale into units of 2^-24 and round to nearest even.
  const float a = std::bit_cast<float>(ax);
  const float units = a * 0x1p24f;
  return sign | uint16_t(std::nearbyint(units));
}

inline float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

inline uint16_t f32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x >> 16) | 0x40u);  // quiet nan
  x += 0x7FFFu + ((x >> 16) & 1u);
  return uint16_t(x >> 16);
}

// float8 e4m3fn: bias 7, no infinities, 0x7F/0xFF are nan, max finite 448.
inline float f8e4m3_to_f32(uint8_t v) {
  const bool neg = v & 0x80u;
  const uint32_t exp = (v >> 3) & 0xFu;
  const uint32_t mant = v & 0x7u;
  float r;
  if (exp == 0xF && mant == 0x7) {
    r = std::numeric_limits<float>::quiet_NaN();
  } else if (exp == 0) {
    r = float(mant) * 0x1p-9f;
  } else {
    r = std::ldexp(1.0f + float(mant) / 8.0f, int(exp) - 7);
  }
  return neg ? -r : r;
}

// float8 e5m2: IEEE-like, bias 15, has infinities.
inline float f8e5m2_to_f32(uint8_t v) { return f16_to_f32(uint16_t(v) << 8); }

// Encodes to the nearest representable value of a float format with `mant_bits` mantissa
// bits, exponent bias `bias`, and largest finite magnitude `max_finite`. Values beyond it
// saturate (the convention of torch's float8 casts after clamping, and of every fp8
// quantizer in the checkpoints we read).
uint8_t f32_to_f8e4m3(float f);
uint8_t f32_to_f8e5m2(float f);

// e8m0: 2^(e-127); 0xFF is nan. Used for MX block scales.
inline float e8m0_to_f32(uint8_t e) {
  if (e == 0xFF) return std::numeric_limits<float>::quiet_NaN();
  if (e == 0) return 0x1p-127f;
  return std::bit_cast<float>(uint32_t(e) << 23);
}

}  // namespace ditrun
