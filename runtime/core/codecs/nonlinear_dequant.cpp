// Decoders for the non-linear and ternary types:
//   IQ4_NL d@0 qs@2(16)                          (32 elements, 18 bytes)
//   IQ4_XS d@0 scales_h@2 scales_l@4(4) qs@8(128)  (256 elements, 136 bytes)
//   TQ1_0  qs@0(48) qh@48(4) d@52                 (256 elements, 54 bytes; 5 trits per byte)
//   TQ2_0  qs@0(64) d@64                          (256 elements, 66 bytes; 2 bits per value)
//   MXFP4  e@0 qs@1(16)                           (32 elements, 17 bytes; e8m0 shared scale)
#include "runtime/core/codecs/codecs.h"
#include "runtime/core/codecs/nonlinear_tables.h"

namespace ditrun::codecs {

void dequant_iq4_nl(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 18, dst += 32) {
    const float d = load_f16(src);
    const uint8_t* qs = src + 2;
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * float(kIq4NlValues[qs[j] & 0x0F]);
      dst[j + 16] = d * float(kIq4NlValues[qs[j] >> 4]);
    }
  }
}

void dequant_iq4_xs(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 136) {
    const float d = load_f16(src);
    const uint16_t scales_h = load_u16(src + 2);
    const uint8_t* scales_l = src + 4;
    const uint8_t* qs = src + 8;
    for (int ib = 0; ib < 8; ++ib, qs += 16, dst += 32) {
      const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * float(ls - 32);
      for (int j = 0; j < 16; ++j) {
        dst[j] = dl * float(kIq4NlValues[qs[j] & 0x0F]);
        dst[j + 16] = dl * float(kIq4NlValues[qs[j] >> 4]);
      }
    }
  }
}

namespace {
// A TQ1_0 byte holds 5 trits as a base-3 fixed-point fraction scaled to 256: multiplying by
// 3^n (mod 256) brings trit n to the top, and (q * 3) >> 8 extracts it.
inline int trit(uint8_t byte, int n) {
  static constexpr uint8_t kPow3[6] = {1, 3, 9, 27, 81, 243};
  const uint8_t q = uint8_t(byte * kPow3[n]);
  return int((uint16_t(q) * 3) >> 8);
}
}  // namespace

void dequant_tq1_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 54) {
    const uint8_t* qs = src;
    const uint8_t* qh = src + 48;
    const float d = load_f16(src + 52);
    // First 32 bytes: 5 trits each, 160 values; next 16 bytes: 80 values; qh: 16 values.
    for (int nt = 0; nt < 5; ++nt)
      for (int m = 0; m < 32; ++m) *dst++ = float(trit(qs[m], nt) - 1) * d;
    for (int nt = 0; nt < 5; ++nt)
      for (int m = 0; m < 16; ++m) *dst++ = float(trit(qs[32 + m], nt) - 1) * d;
    for (int nt = 0; nt < 4; ++nt)
      for (int j = 0; j < 4; ++j) *dst++ = float(trit(qh[j], nt) - 1) * d;
  }
}

void dequant_tq2_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 66) {
    const float d = load_f16(src + 64);
    for (int j = 0; j < 64; j += 32)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m) *dst++ = float(int((src[j + m] >> (2 * l)) & 3) - 1) * d;
  }
}

void dequant_mxfp4(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 17, dst += 32) {
    // ggml stores E2M1 values doubled (as integers) and halves the e8m0 scale to match.
    const uint8_t e = src[0];
    const float d = e < 2 ? std::bit_cast<float>(uint32_t(0x00200000u) << e)
                          : std::bit_cast<float>(uint32_t(e - 1) << 23);
    const uint8_t* qs = src + 1;
    for (int j = 0; j < 16; ++j) {
      dst[j] = float(kMxfp4DoubledValues[qs[j] & 0x0F]) * d;
      dst[j + 16] = float(kMxfp4DoubledValues[qs[j] >> 4]) * d;
    }
  }
}

}  // namespace ditrun::codecs
