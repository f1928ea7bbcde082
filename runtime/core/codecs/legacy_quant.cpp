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
    for (int j = 0; j < 32; ++j) dst[2 + j] = uint8_t(int8_t(std::nearbyint(src[j] * id)));
  }
}

void quant_iq4_nl(const float* src, uint8_t* dst, int64_t n) {
  auto nearest = [](float v) {
    int best = 0;
    for (int k = 1; k < 16; ++k)
      if (std::fabs(float(kIq4NlValues[k]) - v) < std::fabs(float(kIq4NlValues[best]) - v)) best = k;
    return best;
  };
  for (int64_t b = 0; b < n / 32; ++b, src += 32, dst += 18) {
    // Map the signed extreme to the codebook end of the same sign, then refine the scale by
    // least squares over the chosen levels.
    const float ext = signed_extreme(src, 32);
    float d = ext < 0 ? ext / -127.0f : ext / 113.0f;
    uint8_t idx[32];
    for (int pass = 0; pass < 2; ++pass) {
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      double sxq = 0, sqq = 0;
      for (int j = 0; j < 32; ++j) {
        idx[j] = uint8_t(nearest(src[j] * id));
        const double q = kIq4NlValues[idx[j]];
        sxq += src[j] * q;
        sqq += q * q;
      }
      if (sqq > 0) d = float(sxq / sqq);
    }
    store_f16(dst, d);
    for (int j = 0; j < 16; ++j) dst[2 + j] = uint8_t(idx[j] | (idx[j + 16] << 4));
  }
}

}  // namespace ditrun::codecs
