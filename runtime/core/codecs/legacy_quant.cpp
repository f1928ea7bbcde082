// Encoders for the 32-element legacy blocks. They follow ggml's reference rounding (scale
// from the signed extreme for symmetric types, from min/max for affine types), so files we
// write quantize the way llama-quantize would.
#include <algorithm>
#include <cmath>

#include "runtime/core/codecs/codecs.h"
#include "runtime/core/codecs/nonlinear_tables.h"

namespace ditrun::codecs {
namespace {

// The element of largest magnitude, with its sign: symmetric types map it to the most
// negative level so that the full range is used on that side.
float signed_extreme(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, int n, float* mn, float* mx) {
  *mn = x[0];
  *mx = x[0];
  for (int j = 1; j < n; ++j) {
    *mn = std::min(*mn, x[j]);
    *mx = std::max(*mx, x[j]);
  }
}

}  // namespace

void quant_q4_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 32, dst += 18) {
    const float d = signed_extreme(src, 32) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, int(int8_t(src[j] * id + 8.5f)));
      const int hi = std::min(15, int(int8_t(src[j + 16] * id + 8.5f)));
      dst[2 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

void quant_q4_1(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 32, dst += 20) {
    float mn, mx;
    min_max(src, 32, &mn, &mx);
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    store_f16(dst + 2, mn);
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, int((src[j] - mn) * id + 0.5f));
      const int hi = std::min(15, int((src[j + 16] - mn) * id + 0.5f));
      dst[4 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

void quant_q5_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 32, dst += 22) {
    const float d = signed_extreme(src, 32) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(31, int(int8_t(src[j] * id + 16.5f)));
      const int hi = std::min(31, int(int8_t(src[j + 16] * id + 16.5f)));
      dst[6 + j] = uint8_t((lo & 0x0F) | ((hi & 0x0F) << 4));
      qh |= uint32_t((lo >> 4) & 1) << j;
      qh |= uint32_t((hi >> 4) & 1) << (j + 16);
    }
    for (int k = 0; k < 4; ++k) dst[2 + k] = uint8_t(qh >> (8 * k));
  }
}

void quant_q5_1(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 32, dst += 24) {
    float mn, mx;
    min_max(src, 32, &mn, &mx);
    const float d = (mx - mn) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    store_f16(dst + 2, mn);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(31, int((src[j] - mn) * id + 0.5f));
      const int hi = std::min(31, int((src[j + 16] - mn) * id + 0.5f));
      dst[8 + j] = uint8_t((lo & 0x0F) | ((hi & 0x0F) << 4));
      qh |= uint32_t((lo >> 4) & 1) << j;
      qh |= uint32_t((hi >> 4) & 1) << (j + 16);
    }
    for (int k = 0; k < 4; ++k) dst[4 + k] = uint8_t(qh >> (8 * k));
  }
}

void quant_q8_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 32, dst += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(src[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    // Ties round away from zero (roundf), as ggml's quantize_row_q8_0_ref does, so our
    // bytes match llama-quantize's even at exact halves.
    for (int j = 0; j < 32; ++j) dst[2 + j] = uint8_t(int8_t(std::round(src[j] * id)));
  }
}

// IQ4_NL's codebook is non-uniform and asymmetric (-127 .. 113), so the best scale is not
// fixed by the block's extreme: which end of the codebook the extreme maps to, and how far
// in, changes which levels the rest of the block can use. Try a small range of both, fit
// each by least squares, keep the one with the lowest squared error.
namespace {

int nearest_iq4(float v) {
  int best = 0;
  for (int k = 1; k < 16; ++k)
    if (std::fabs(float(kIq4NlValues[k]) - v) < std::fabs(float(kIq4NlValues[best]) - v)) best = k;
  return best;
}

// Assigns levels for scale `d` and returns the least-squares scale for those levels, with
// the squared error it achieves (sum x^2 - sxq^2 / sqq).
float iq4_fit(const float* x, float d, double* err) {
  const float id = 1.0f / d;
  double sxq = 0, sqq = 0, sxx = 0;
  for (int j = 0; j < 32; ++j) {
    const double q = kIq4NlValues[nearest_iq4(x[j] * id)];
    sxq += x[j] * q;
    sqq += q * q;
    sxx += double(x[j]) * x[j];
  }
  *err = sqq > 0 ? sxx - sxq * sxq / sqq : sxx;
  return sqq > 0 ? float(sxq / sqq) : 0.0f;
}

}  // namespace

void quant_iq4_nl(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 32, dst += 18) {
    const float ext = signed_extreme(src, 32);
    float d = 0.0f;
    if (ext != 0.0f) {
      double best_err = INFINITY;
      for (int end : {-127, 113})
        for (int step = -10; step <= 10; ++step) {
          double err;
          const float cand = iq4_fit(src, ext / float(end + step), &err);
          if (cand != 0.0f && err < best_err) {
            best_err = err;
            d = cand;
          }
        }
    }
    // Round the scale to what is stored, then choose levels against the stored value.
    d = f16_to_f32(f32_to_f16(d));
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_f16(dst, d);
    for (int j = 0; j < 16; ++j)
      dst[2 + j] = uint8_t(nearest_iq4(src[j] * id) | (nearest_iq4(src[j + 16] * id) << 4));
  }
}

}  // namespace ditrun::codecs
