// Decoders for ggml's 32-element "legacy" blocks: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
// Layouts (byte offsets): Q4_0 d@0 qs@2 | Q4_1 d@0 m@2 qs@4 | Q5_0 d@0 qh@2 qs@6 |
// Q5_1 d@0 m@2 qh@4 qs@8 | Q8_0 d@0 qs@2 | Q8_1 d@0 s@2 qs@4. Element j of a 4-bit block
// is the low nibble of qs[j], element j+16 the high nibble; bit j of qh is element j's 5th bit.
#include "runtime/core/codecs/codecs.h"

namespace ditrun::codecs {

void dequant_q4_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 18, dst += 32) {
    const float d = load_f16(src);
    const uint8_t* qs = src + 2;
    for (int j = 0; j < 16; ++j) {
      dst[j] = float((qs[j] & 0x0F) - 8) * d;
      dst[j + 16] = float((qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 20, dst += 32) {
    const float d = load_f16(src);
    const float m = load_f16(src + 2);
    const uint8_t* qs = src + 4;
    for (int j = 0; j < 16; ++j) {
      dst[j] = float(qs[j] & 0x0F) * d + m;
      dst[j + 16] = float(qs[j] >> 4) * d + m;
    }
  }
}

void dequant_q5_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 22, dst += 32) {
    const float d = load_f16(src);
    const uint32_t qh = load_u32(src + 2);
    const uint8_t* qs = src + 6;
    for (int j = 0; j < 16; ++j) {
      const int lo = (qs[j] & 0x0F) | int(((qh >> j) & 1u) << 4);
      const int hi = (qs[j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
      dst[j] = float(lo - 16) * d;
      dst[j + 16] = float(hi - 16) * d;
    }
  }
}

void dequant_q5_1(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 24, dst += 32) {
    const float d = load_f16(src);
    const float m = load_f16(src + 2);
    const uint32_t qh = load_u32(src + 4);
    const uint8_t* qs = src + 8;
    for (int j = 0; j < 16; ++j) {
      const int lo = (qs[j] & 0x0F) | int(((qh >> j) & 1u) << 4);
      const int hi = (qs[j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
      dst[j] = float(lo) * d + m;
      dst[j + 16] = float(hi) * d + m;
    }
  }
}

void dequant_q8_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 34, dst += 32) {
    const float d = load_f16(src);
    for (int j = 0; j < 32; ++j) dst[j] = float(int8_t(src[2 + j])) * d;
  }
}

void dequant_q8_1(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 36, dst += 32) {
    const float d = load_f16(src);
    for (int j = 0; j < 32; ++j) dst[j] = float(int8_t(src[4 + j])) * d;
  }
}

}  // namespace ditrun::codecs
