#include "runtime/core/float_codecs.h"

namespace ditrun {
namespace {

// Round |f| to a float format with `mant_bits` explicit mantissa bits and exponent bias
// `bias`, saturating at `max_code` (the code of the largest finite magnitude). Returns the
// 7-bit magnitude code; the caller adds the sign.
uint8_t encode_small_float(float a, int mant_bits, int bias, uint8_t max_code, float max_finite) {
  if (!(a > 0.0f)) return 0;
  if (a >= max_finite) return max_code;
  int e2 = 0;
  std::frexp(a, &e2);  // a = m * 2^e2, m in [0.5, 1)
  int exp = e2 - 1;    // a = (1.f) * 2^exp
  const int min_exp = 1 - bias;
  if (exp < min_exp) {
    // Subnormal: units of 2^(min_exp - mant_bits). Rounding up to 2^mant_bits lands exactly
    // on the smallest normal code, so no special case is needed.
    const float units = std::nearbyint(std::ldexp(a, mant_bits - min_exp));
    return uint8_t(units);
  }
  float m = std::nearbyint(std::ldexp(a, mant_bits - exp));  // in [2^mb, 2^(mb+1)]
  if (m >= float(1 << (mant_bits + 1))) {
    m /= 2;
    exp += 1;
  }
  const uint32_t code = (uint32_t(exp + bias) << mant_bits) | (uint32_t(m) - (1u << mant_bits));
  return code > max_code ? max_code : uint8_t(code);
}

}  // namespace

uint8_t f32_to_f8e4m3(float f) {
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  if (std::isnan(f)) return sign | 0x7F;
  return sign | encode_small_float(std::fabs(f), 3, 7, 0x7E, 448.0f);
}

uint8_t f32_to_f8e5m2(float f) {
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  if (std::isnan(f)) return sign | 0x7F;
  if (std::isinf(f)) return sign | 0x7C;
  return sign | encode_small_float(std::fabs(f), 2, 15, 0x7B, 57344.0f);
}

}  // namespace ditrun
