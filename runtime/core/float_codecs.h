// Scalar conversions between f32 and the narrow float formats stored in checkpoints:
// IEEE binary16, bfloat16, float8 e4m3fn / e5m2 (OCP), and e8m0 (power-of-two scales).
// Decoding is exact; encoding rounds to nearest even. These are the bit-level definitions
// every backend's kernels are tested against; the decoders forward to host_device.h, the one
// definition the CUDA kernels share.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "runtime/core/host_device.h"

namespace ditrun {

inline float f16_to_f32(uint16_t h) { return hd::half_to_float(h); }

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

inline float bf16_to_f32(uint16_t b) { return hd::bf16_to_float(b); }

inline uint16_t f32_to_bf16(float f) { return hd::float_to_bf16(f); }

// float8 e4m3fn: bias 7, no infinities, 0x7F/0xFF are nan, max finite 448.
inline float f8e4m3_to_f32(uint8_t v) { return hd::e4m3_to_float(v); }

// float8 e5m2: IEEE-like, bias 15, has infinities.
inline float f8e5m2_to_f32(uint8_t v) { return hd::e5m2_to_float(v); }

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
