// Encoders for the K-quants. Each 256-element super-block is split into groups; every group
// gets a least-squares fit (scale, and min for the affine types), then the group parameters
// are themselves quantized to 4 or 6 bits against fp16 super-block scales, and the values
// are re-rounded against the parameters actually stored. Quality is checked against ggml's
// own round-trip thresholds in tests/unit/quantize_roundtrip_test.cpp.
#include <algorithm>
#include <cmath>

#include "runtime/core/codecs/codecs.h"
#include "runtime/core/codecs/kquant_scales.h"

namespace ditrun::codecs {
namespace {

int clamp_round(float v, int lo, int hi) { return std::clamp(int(std::nearbyint(v)), lo, hi); }

// Fits x ≈ scale * q - min with q in [0, nmax], min >= 0 (the K-quant affine form).
// Starts from the min/max grid and refines (scale, min) by least squares a few times.
void fit_affine(const float* x, int n, int nmax, float* scale, float* min) {
  float lo = std::min(0.0f, *std::min_element(x, x + n));
  float hi = *std::max_element(x, x + n);
  if (hi <= lo) {
    *scale = 0.0f;
    *min = -lo;
    return;
  }
  float s = (hi - lo) / float(nmax), o = lo;  // x ≈ s*q + o, o <= 0
  for (int iter = 0; iter < 4; ++iter) {
    double sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int j = 0; j < n; ++j) {
      const double q = clamp_round((x[j] - o) / s, 0, nmax);
      sq += q;
      sqq += q * q;
      sx += x[j];
      sxq += x[j] * q;
    }
    const double det = n * sqq - sq * sq;
    if (det <= 0) break;
    double ns = (n * sxq - sq * sx) / det;
    double no = (sx - ns * sq) / n;
    if (no > 0) {  // the format cannot add: refit the scale with o = 0
      no = 0;
      ns = sqq > 0 ? sxq / sqq : 0;
    }
    if (!(ns > 0)) break;
    s = float(ns);
    o = float(no);
  }
  *scale = s;
  *min = -o;
}

// Fits x ≈ scale * q with q in [qmin, qmax] (symmetric types). The signed extreme maps to
// qmin, then least squares refines the scale.
float fit_symmetric(const float* x, int n, int qmin, int qmax) {
  float amax = 0.0f, ext = 0.0f;
  for (int j = 0; j < n; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      ext = x[j];
    }
  if (amax == 0.0f) return 0.0f;
  float s = ext / float(qmin);
  for (int iter = 0; iter < 3; ++iter) {
    double sxq = 0, sqq = 0;
    for (int j = 0; j < n; ++j) {
      const double q = clamp_round(x[j] / s, qmin, qmax);
      sxq += x[j] * q;
      sqq += q * q;
    }
    if (sqq <= 0) break;
    const double ns = sxq / sqq;
    if (ns == 0) break;
    s = float(ns);
  }
  return s;
}

// Quantizes group parameters (all >= 0) to [0, levels] against a shared fp16 step, which is
// returned after fp16 rounding so callers re-round against the value actually stored.
float quantize_params(const float* v, int count, int levels, uint8_t* out) {
  const float vmax = *std::max_element(v, v + count);
  const float step = f16_to_f32(f32_to_f16(vmax / float(levels)));
  for (int i = 0; i < count; ++i) out[i] = step > 0 ? uint8_t(clamp_round(v[i] / step, 0, levels)) : 0;
  return step;
}

// Shared by Q4_K and Q5_K: eight groups of 32, 6-bit scales and mins.
void kquant_affine_32(const float* x, int nmax, uint8_t* head, uint8_t q_out[256]) {
  float scales[8], mins[8];
  for (int g = 0; g < 8; ++g) fit_affine(x + 32 * g, 32, nmax, &scales[g], &mins[g]);
  uint8_t ls[8], lm[8];
  const float d = quantize_params(scales, 8, 63, ls);
  const float dmin = quantize_params(mins, 8, 63, lm);
  store_f16(head, d);
  store_f16(head + 2, dmin);
  k4_pack_scale_min(ls, lm, head + 4);
  for (int g = 0; g < 8; ++g) {
    const float dl = d * float(ls[g]), ml = dmin * float(lm[g]);
    for (int l = 0; l < 32; ++l)
      q_out[32 * g + l] = dl > 0 ? uint8_t(clamp_round((x[32 * g + l] + ml) / dl, 0, nmax)) : 0;
  }
}

}  // namespace

void quant_q4_k(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 256, dst += 144) {
    uint8_t q[256];
    kquant_affine_32(src, 15, dst, q);
    uint8_t* qs = dst + 16;
    for (int g = 0; g < 4; ++g)
      for (int l = 0; l < 32; ++l) qs[32 * g + l] = uint8_t(q[64 * g + l] | (q[64 * g + 32 + l] << 4));
  }
}

void quant_q5_k(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 256, dst += 176) {
    uint8_t q[256];
    kquant_affine_32(src, 31, dst, q);
    uint8_t* qh = dst + 16;
    uint8_t* ql = dst + 48;
    std::fill(qh, qh + 32, uint8_t(0));
    for (int g = 0; g < 4; ++g)
      for (int l = 0; l < 32; ++l) {
        const uint8_t a = q[64 * g + l], c = q[64 * g + 32 + l];
        ql[32 * g + l] = uint8_t((a & 0x0F) | ((c & 0x0F) << 4));
        qh[l] |= uint8_t(((a >> 4) & 1) << (2 * g));
        qh[l] |= uint8_t(((c >> 4) & 1) << (2 * g + 1));
      }
  }
}

void quant_q6_k(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 256, dst += 210) {
    float scales[16];
    float amax = 0.0f;
    for (int g = 0; g < 16; ++g) {
      scales[g] = fit_symmetric(src + 16 * g, 16, -32, 31);
      amax = std::max(amax, std::fabs(scales[g]));
    }
    const float d = f16_to_f32(f32_to_f16(amax / 127.0f));
    int8_t* sc = reinterpret_cast<int8_t*>(dst + 192);
    uint8_t q[256];
    for (int g = 0; g < 16; ++g) {
      sc[g] = d > 0 ? int8_t(clamp_round(scales[g] / d, -127, 127)) : 0;
      const float dl = d * float(sc[g]);
      for (int l = 0; l < 16; ++l)
        q[16 * g + l] = uint8_t((dl != 0 ? clamp_round(src[16 * g + l] / dl, -32, 31) : 0) + 32);
    }
    store_f16(dst + 208, d);
    uint8_t* ql = dst;
    uint8_t* qh = dst + 128;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* qq = q + 128 * half;
      for (int l = 0; l < 32; ++l) {
        ql[64 * half + l] = uint8_t((qq[l] & 0x0F) | ((qq[l + 64] & 0x0F) << 4));
        ql[64 * half + l + 32] = uint8_t((qq[l + 32] & 0x0F) | ((qq[l + 96] & 0x0F) << 4));
        qh[32 * half + l] = uint8_t((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) | ((qq[l + 64] >> 4) << 4) |
                                    ((qq[l + 96] >> 4) << 6));
      }
    }
  }
}

void quant_q3_k(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 256, dst += 110) {
    float scales[16];
    float amax = 0.0f, ext = 0.0f;
    for (int g = 0; g < 16; ++g) {
      scales[g] = fit_symmetric(src + 16 * g, 16, -4, 3);
      if (std::fabs(scales[g]) > amax) {
        amax = std::fabs(scales[g]);
        ext = scales[g];
      }
    }
    // Stored scales are 6-bit signed (-32..31): map the extreme scale to -32.
    const float d = f16_to_f32(f32_to_f16(ext / -32.0f));
    int8_t sc[16];
    uint8_t v[256];
    for (int g = 0; g < 16; ++g) {
      sc[g] = d != 0 ? int8_t(clamp_round(scales[g] / d, -32, 31)) : 0;
      const float dl = d * float(sc[g]);
      for (int l = 0; l < 16; ++l)
        v[16 * g + l] = uint8_t((dl != 0 ? clamp_round(src[16 * g + l] / dl, -4, 3) : 0) + 4);
    }
    uint8_t* hmask = dst;
    uint8_t* qs = dst + 32;
    std::fill(dst, dst + 96, uint8_t(0));
    pack_q3_k_scales(sc, dst + 96);
    store_f16(dst + 108, d);
    // Element i = half*128 + shift_idx*32 + l sits in qs[half*32 + l] at bits 2*shift_idx,
    // with its high bit in hmask[l] bit (half*4 + shift_idx).
    for (int i = 0; i < 256; ++i) {
      const int half = i / 128, j = (i % 128) / 32, l = i % 32;
      qs[half * 32 + l] |= uint8_t((v[i] & 3) << (2 * j));
      if (v[i] & 4) hmask[l] |= uint8_t(1u << (half * 4 + j));
    }
  }
}

void quant_q2_k(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, src += 256, dst += 84) {
    float scales[16], mins[16];
    for (int g = 0; g < 16; ++g) fit_affine(src + 16 * g, 16, 3, &scales[g], &mins[g]);
    uint8_t ls[16], lm[16];
    const float d = quantize_params(scales, 16, 15, ls);
    const float dmin = quantize_params(mins, 16, 15, lm);
    for (int g = 0; g < 16; ++g) dst[g] = uint8_t(ls[g] | (lm[g] << 4));
    uint8_t* qs = dst + 16;
    std::fill(qs, qs + 64, uint8_t(0));
    for (int i = 0; i < 256; ++i) {
      const int g = i / 16;
      const float dl = d * float(ls[g]), ml = dmin * float(lm[g]);
      const int q = dl > 0 ? clamp_round((src[i] + ml) / dl, 0, 3) : 0;
      const int half = i / 128, j = (i % 128) / 32, l = i % 32;
      qs[half * 32 + l] |= uint8_t(q << (2 * j));
    }
    store_f16(dst + 80, d);
    store_f16(dst + 82, dmin);
  }
}

}  // namespace ditrun::codecs
