// Decoders for ggml's K-quants: 256-element super-blocks with packed sub-block scales.
// Byte layouts:
//   Q2_K scales@0(16) qs@16(64) d@80 dmin@82                     (84 bytes)
//   Q3_K hmask@0(32) qs@32(64) scales@96(12) d@108                (110 bytes)
//   Q4_K d@0 dmin@2 scales@4(12) qs@16(128)                       (144 bytes)
//   Q5_K d@0 dmin@2 scales@4(12) qh@16(32) qs@48(128)             (176 bytes)
//   Q6_K ql@0(128) qh@128(64) scales@192(16, int8) d@208           (210 bytes)
//   Q8_K d@0 (f32) qs@4(256) bsums@260(16 x int16)                (292 bytes)
#include "runtime/core/codecs/codecs.h"
#include "runtime/core/codecs/kquant_scales.h"

namespace ditrun::codecs {

void dequant_q2_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 84) {
    const uint8_t* scales = src;
    const uint8_t* q = src + 16;
    const float d = load_f16(src + 80);
    const float dmin = load_f16(src + 82);
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int sub = 0; sub < 2; ++sub) {
          const uint8_t sc = scales[is++];
          const float dl = d * float(sc & 0x0F);
          const float ml = dmin * float(sc >> 4);
          for (int l = 0; l < 16; ++l) *dst++ = dl * float((q[sub * 16 + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

void dequant_q3_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 110) {
    const uint8_t* hmask = src;
    const uint8_t* q = src + 32;
    int8_t sc[16];
    unpack_q3_k_scales(src + 96, sc);
    const float d_all = load_f16(src + 108);
    int is = 0;
    uint8_t m = 1;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int sub = 0; sub < 2; ++sub) {
          const float dl = d_all * float(sc[is++]);
          for (int l = 0; l < 16; ++l) {
            const int idx = sub * 16 + l;
            const int v = int((q[idx] >> shift) & 3) - ((hmask[idx] & m) ? 0 : 4);
            *dst++ = dl * float(v);
          }
        }
      }
    }
  }
}

void dequant_q4_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 144) {
    const float d = load_f16(src);
    const float dmin = load_f16(src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* q = src + 16;
    for (int g = 0; g < 4; ++g, q += 32) {
      uint8_t sc, m;
      k4_scale_min(2 * g, scales, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      k4_scale_min(2 * g + 1, scales, &sc, &m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *dst++ = d1 * float(q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

void dequant_q5_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 176) {
    const float d = load_f16(src);
    const float dmin = load_f16(src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* qh = src + 16;
    const uint8_t* ql = src + 48;
    for (int g = 0; g < 4; ++g, ql += 32) {
      uint8_t sc, m;
      k4_scale_min(2 * g, scales, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      k4_scale_min(2 * g + 1, scales, &sc, &m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      const uint8_t u1 = uint8_t(1u << (2 * g)), u2 = uint8_t(2u << (2 * g));
      for (int l = 0; l < 32; ++l) *dst++ = d1 * float((ql[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

void dequant_q6_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 210, dst += 256) {
    const float d = load_f16(src + 208);
    const uint8_t* ql = src;
    const uint8_t* qh = src + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(src + 192);
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8) {
      float* y = dst + half * 128;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = int((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * float(sc[is + 0]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

void dequant_q8_k(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 292) {
    float d;
    std::memcpy(&d, src, 4);
    for (int j = 0; j < 256; ++j) *dst++ = d * float(int8_t(src[4 + j]));
  }
}

}  // namespace ditrun::codecs
