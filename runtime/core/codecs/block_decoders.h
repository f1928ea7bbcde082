// The GGUF block decoders, written once for the host and the device (DESIGN.md: device math
// shared with the CPU codecs). BlockDecoder<T>::decode8 turns elements [8g, 8g+8) of one
// block into f32, bit-exact with ggml's dequantize_row_*: each value is computed in f32 in the
// order ggml evaluates it, so callers must compile without FMA contraction (the CPU codecs use
// -ffp-contract=off, the CUDA kernels --fmad=false). The CPU codecs (block_loop.h) loop
// over it; the CUDA dequantize kernel calls it per thread.
//
// Device rules: byte-wise loads (blocks are unaligned), no std:: calls, and no namespace-scope
// array read with a runtime index (nvcc cannot see those from device code): small tables are
// function-scope statics or packed into an integer, the lattice codebooks come in through
// Codebooks.
#pragma once

#include <cstdint>

#include "runtime/core/dtype.h"
#include "runtime/core/host_device.h"

namespace ditrun::codecs {

// Lattice codebooks the IQ decoders index: host arrays (host_codebooks()) or device arrays
// (the CUDA side defines its own from the same iq_grids/*.inc data files).
struct Codebooks {
  const uint64_t* iq2xxs_grid;  // 256
  const uint64_t* iq2xs_grid;   // 512
  const uint64_t* iq2s_grid;    // 1024
  const uint32_t* iq3xxs_grid;  // 256
  const uint32_t* iq3s_grid;    // 512
  const uint64_t* iq1s_grid;    // 2048
  const uint8_t* ksigns_iq2xs;  // 128
};
const Codebooks& host_codebooks();

// ggml's IQ1 grid offset (IQ1S_DELTA; its dequantize_row_iq1_m uses the same constant).
inline constexpr float kIq1Delta =
#include "runtime/core/codecs/iq_grids/iq1s_delta.inc"
    ;

namespace detail {

// Small codebooks are function-scope statics: nvcc makes them device variables a thread can
// index (a namespace-scope constexpr array it could not read from device code).
// IQ4_NL / IQ4_XS: the non-uniform 4-bit codebook.
DITRUN_HD float iq4nl_value(int i) {
  static constexpr float kValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  return kValues[i];
}
// MXFP4: E2M1 values doubled to integers (bit 3 = sign); the scale is halved to match.
DITRUN_HD float mxfp4_doubled_value(int i) {
  static constexpr float kValues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  return kValues[i];
}

DITRUN_HD uint8_t byte_of(uint64_t v, int j) { return uint8_t(v >> (8 * j)); }
// v * (bit j of signs ? -1 : 1), as ggml writes it, without a branch: flipping the sign bit
// is that product exactly (for a NaN v, only the NaN's sign can differ).
DITRUN_HD float apply_sign(float v, uint8_t signs, int j) {
  return hd::bits_to_float(hd::float_to_bits(v) ^ (uint32_t((signs >> j) & 1) << 31));
}

// Q4_K / Q5_K: (scale, min) pair j of eight 6-bit pairs packed into 12 bytes.
DITRUN_HD void k4_scale_min(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q3_K: signed scale k of sixteen 6-bit scales (stored +32) packed into 12 bytes.
DITRUN_HD int q3_k_scale(const uint8_t* packed, int k) {
  const int low4 = k < 8 ? (packed[k] & 0x0F) : (packed[k - 8] >> 4);
  const int high2 = (packed[8 + k % 4] >> (2 * (k / 4))) & 3;
  return (low4 | (high2 << 4)) - 32;
}

// TQ1_0: a byte holds 5 trits as a base-3 fraction scaled to 256; multiplying by 3^n (mod
// 256) brings trit n to the top, and (q * 3) >> 8 extracts it.
DITRUN_HD int trit(uint8_t byte, int n) {
  constexpr uint64_t kPow3 = 0xF3511B090301ull;  // bytes 1, 3, 9, 27, 81, 243
  const uint8_t q = uint8_t(byte * byte_of(kPow3, n));
  return int((uint16_t(q) * 3) >> 8);
}

// ggml's half of an e8m0 scale: 2^(e-128), subnormal for e < 2.
DITRUN_HD float e8m0_half(uint8_t e) {
  return e < 2 ? hd::bits_to_float(0x00200000u << e) : hd::bits_to_float(uint32_t(e - 1) << 23);
}

// Element i of a 32-element block whose 4-bit codes sit as ggml's legacy blocks hold them:
// element j in the low nibble of qs[j], element j + 16 in the high nibble.
DITRUN_HD int nibble32(const uint8_t* qs, int i) { return (qs[i & 15] >> ((i >> 4) * 4)) & 0x0F; }

// The scale of an IQ2/IQ3 32-element sub-block: d * (0.5 + s) * k, in ggml's order.
DITRUN_HD float iq_half_step_scale(float d, int s, float k) { return d * (0.5f + float(s)) * k; }

}  // namespace detail

template <DType T>
struct BlockDecoder;

// ---- ggml legacy 32-element blocks ------------------------------------------------------
// Q4_0 d@0 qs@2 | Q4_1 d@0 m@2 qs@4 | Q5_0 d@0 qh@2 qs@6 | Q5_1 d@0 m@2 qh@4 qs@8 |
// Q8_0 d@0 qs@2 | Q8_1 d@0 s@2 qs@4. Bit i of qh is element i's 5th bit.

template <>
struct BlockDecoder<DType::Q4_0> {
  static constexpr int64_t kElems = 32, kBytes = 18;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b);
    for (int j = 0; j < 8; ++j) out[j] = float(detail::nibble32(b + 2, 8 * g + j) - 8) * d;
  }
};

template <>
struct BlockDecoder<DType::Q4_1> {
  static constexpr int64_t kElems = 32, kBytes = 20;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b), m = hd::load_half(b + 2);
    for (int j = 0; j < 8; ++j) out[j] = float(detail::nibble32(b + 4, 8 * g + j)) * d + m;
  }
};

template <>
struct BlockDecoder<DType::Q5_0> {
  static constexpr int64_t kElems = 32, kBytes = 22;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b);
    const uint32_t qh = hd::load_u32(b + 2);
    for (int j = 0; j < 8; ++j) {
      const int i = 8 * g + j;
      const int q = detail::nibble32(b + 6, i) | int(((qh >> i) & 1u) << 4);
      out[j] = float(q - 16) * d;
    }
  }
};

template <>
struct BlockDecoder<DType::Q5_1> {
  static constexpr int64_t kElems = 32, kBytes = 24;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b), m = hd::load_half(b + 2);
    const uint32_t qh = hd::load_u32(b + 4);
    for (int j = 0; j < 8; ++j) {
      const int i = 8 * g + j;
      const int q = detail::nibble32(b + 8, i) | int(((qh >> i) & 1u) << 4);
      out[j] = float(q) * d + m;
    }
  }
};

template <>
struct BlockDecoder<DType::Q8_0> {
  static constexpr int64_t kElems = 32, kBytes = 34;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b);
    for (int j = 0; j < 8; ++j) out[j] = float(int8_t(b[2 + 8 * g + j])) * d;
  }
};

template <>
struct BlockDecoder<DType::Q8_1> {
  static constexpr int64_t kElems = 32, kBytes = 36;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b);
    for (int j = 0; j < 8; ++j) out[j] = float(int8_t(b[4 + 8 * g + j])) * d;
  }
};

// ---- ggml K-quants: 256-element super-blocks --------------------------------------------
// Q2_K scales@0(16) qs@16(64) d@80 dmin@82 | Q3_K hmask@0(32) qs@32(64) scales@96(12) d@108 |
// Q4_K d@0 dmin@2 scales@4(12) qs@16(128) | Q5_K d@0 dmin@2 scales@4(12) qh@16(32) qs@48(128) |
// Q6_K ql@0(128) qh@128(64) scales@192(16 x int8) d@208 | Q8_K d@0(f32) qs@4(256) bsums@260.

// Q2_K / Q3_K: element i takes 2 bits from byte 32*(i/128) + i%32 at bit 2*((i/32)%4); a
// group of 8 shares one 16-element sub-block scale.
template <>
struct BlockDecoder<DType::Q2_K> {
  static constexpr int64_t kElems = 256, kBytes = 84;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b + 80), dmin = hd::load_half(b + 82);
    const uint8_t sc = b[g / 2];
    const float dl = d * float(sc & 0x0F), ml = dmin * float(sc >> 4);
    const uint8_t* q = b + 16 + 32 * (g / 16) + 8 * (g % 4);
    const int shift = 2 * ((g / 4) % 4);
    for (int j = 0; j < 8; ++j) out[j] = dl * float((q[j] >> shift) & 3) - ml;
  }
};

template <>
struct BlockDecoder<DType::Q3_K> {
  static constexpr int64_t kElems = 256, kBytes = 110;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float dl = hd::load_half(b + 108) * float(detail::q3_k_scale(b + 96, g / 2));
    const uint8_t* hmask = b + 8 * (g % 4);
    const uint8_t* q = b + 32 + 32 * (g / 16) + 8 * (g % 4);
    const int shift = 2 * ((g / 4) % 4);
    const uint8_t m = uint8_t(1u << (g / 4));  // the high bit of element i is bit i/32 of hmask
    for (int j = 0; j < 8; ++j) {
      const int v = int((q[j] >> shift) & 3) - ((hmask[j] & m) ? 0 : 4);
      out[j] = dl * float(v);
    }
  }
};

// Q4_K / Q5_K: sub-block s = i/32 has its own (scale, min); its codes are the low nibbles of
// qs[32*(s/2) ..] for even s, the high nibbles for odd s.
template <>
struct BlockDecoder<DType::Q4_K> {
  static constexpr int64_t kElems = 256, kBytes = 144;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b), dmin = hd::load_half(b + 2);
    const int s = g / 4;
    int sc, m;
    detail::k4_scale_min(s, b + 4, &sc, &m);
    const float dl = d * float(sc), ml = dmin * float(m);
    const uint8_t* q = b + 16 + 32 * (s / 2) + 8 * (g % 4);
    const int shift = 4 * (s % 2);
    for (int j = 0; j < 8; ++j) out[j] = dl * float((q[j] >> shift) & 0x0F) - ml;
  }
};

template <>
struct BlockDecoder<DType::Q5_K> {
  static constexpr int64_t kElems = 256, kBytes = 176;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b), dmin = hd::load_half(b + 2);
    const int s = g / 4;
    int sc, m;
    detail::k4_scale_min(s, b + 4, &sc, &m);
    const float dl = d * float(sc), ml = dmin * float(m);
    const uint8_t* qh = b + 16 + 8 * (g % 4);
    const uint8_t* ql = b + 48 + 32 * (s / 2) + 8 * (g % 4);
    const int shift = 4 * (s % 2);
    for (int j = 0; j < 8; ++j) {
      const uint8_t q = uint8_t(((ql[j] >> shift) & 0x0F) | (((qh[j] >> s) & 1) << 4));
      out[j] = dl * float(q) - ml;
    }
  }
};

// Q6_K: each 128-element half h has ql[64*h ..], qh[32*h ..], scales[8*h ..]; its quarter
// r = (i%128)/32 takes the low (r < 2) or high nibble of ql[l + 32*(r%2)] and bits 2r..2r+1
// of qh[l], l = i%32.
template <>
struct BlockDecoder<DType::Q6_K> {
  static constexpr int64_t kElems = 256, kBytes = 210;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b + 208);
    const int h = g / 16, r = (g / 4) % 4, l0 = 8 * (g % 4);
    const uint8_t* ql = b + 64 * h + 32 * (r % 2) + l0;
    const uint8_t* qh = b + 128 + 32 * h + l0;
    const float dl = d * float(int8_t(b[192 + 8 * h + 2 * r + l0 / 16]));
    const int shift = 4 * (r / 2);
    for (int j = 0; j < 8; ++j) {
      const int q = int(((ql[j] >> shift) & 0x0F) | (((qh[j] >> (2 * r)) & 3) << 4)) - 32;
      out[j] = dl * float(q);
    }
  }
};

template <>
struct BlockDecoder<DType::Q8_K> {
  static constexpr int64_t kElems = 256, kBytes = 292;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::bits_to_float(hd::load_u32(b));
    for (int j = 0; j < 8; ++j) out[j] = d * float(int8_t(b[4 + 8 * g + j]));
  }
};

// ---- Non-linear 4-bit, ternary and microscaling types -----------------------------------
// IQ4_NL d@0 qs@2(16) | IQ4_XS d@0 scales_h@2 scales_l@4(4) qs@8(128) |
// TQ1_0 qs@0(48) qh@48(4) d@52 | TQ2_0 qs@0(64) d@64 | MXFP4 e@0 qs@1(16).

template <>
struct BlockDecoder<DType::IQ4_NL> {
  static constexpr int64_t kElems = 32, kBytes = 18;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b);
    for (int j = 0; j < 8; ++j)
      out[j] = d * detail::iq4nl_value(detail::nibble32(b + 2, 8 * g + j));
  }
};

template <>
struct BlockDecoder<DType::IQ4_XS> {
  static constexpr int64_t kElems = 256, kBytes = 136;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b);
    const int s = g / 4;  // 32-element sub-block: 4-bit low part of its scale, 2-bit high part
    const int ls = ((b[4 + s / 2] >> (4 * (s % 2))) & 0x0F) | (((hd::load_u16(b + 2) >> (2 * s)) & 3) << 4);
    const float dl = d * float(ls - 32);
    for (int j = 0; j < 8; ++j)
      out[j] = dl * detail::iq4nl_value(detail::nibble32(b + 8 + 16 * s, 8 * (g % 4) + j));
  }
};

// TQ1_0 order: trit n of qs[m] (m < 32) is element 32n + m; trit n of qs[32 + m] (m < 16) is
// element 160 + 16n + m; trit n of qh[m] (m < 4, n < 4) is element 240 + 4n + m.
template <>
struct BlockDecoder<DType::TQ1_0> {
  static constexpr int64_t kElems = 256, kBytes = 54;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b + 52);
    if (g < 20) {
      for (int j = 0; j < 8; ++j) out[j] = float(detail::trit(b[8 * (g % 4) + j], g / 4) - 1) * d;
    } else if (g < 30) {
      const int k = g - 20;
      for (int j = 0; j < 8; ++j) out[j] = float(detail::trit(b[32 + 8 * (k % 2) + j], k / 2) - 1) * d;
    } else {
      const int n0 = 2 * (g - 30);
      for (int j = 0; j < 8; ++j) out[j] = float(detail::trit(b[48 + j % 4], n0 + j / 4) - 1) * d;
    }
  }
};

// TQ2_0: element i is bits 2*((i%128)/32) of qs[32*(i/128) + i%32].
template <>
struct BlockDecoder<DType::TQ2_0> {
  static constexpr int64_t kElems = 256, kBytes = 66;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = hd::load_half(b + 64);
    const uint8_t* q = b + 32 * (g / 16) + 8 * (g % 4);
    const int shift = 2 * ((g / 4) % 4);
    for (int j = 0; j < 8; ++j) out[j] = float(int((q[j] >> shift) & 3) - 1) * d;
  }
};

template <>
struct BlockDecoder<DType::MXFP4> {
  static constexpr int64_t kElems = 32, kBytes = 17;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks&) {
    const float d = detail::e8m0_half(b[0]);
    for (int j = 0; j < 8; ++j)
      out[j] = detail::mxfp4_doubled_value(detail::nibble32(b + 1, 8 * g + j)) * d;
  }
};

// ---- Lattice codebooks (IQ2 / IQ3 / IQ1) -------------------------------------------------
// Each group of 8 is one grid point (IQ3: two points of 4) times a sub-block scale, with
// signs from a 7-bit index into ksigns_iq2xs (the 8th sign makes the parity even) or from a
// sign byte; IQ1 grid points are -1/0/1 plus a shared +-delta.
// IQ2_XXS d@0 qs@2(64) | IQ2_XS d@0 qs@2(32 x u16) scales@66(8) |
// IQ2_S d@0 qs@2(32) signs@34(32) qh@66(8) scales@74(8) | IQ3_XXS d@0 qs@2(64) aux@66(8 x u32) |
// IQ3_S d@0 qs@2(64) qh@66(8) signs@74(32) scales@106(4) | IQ1_S d@0 qs@2(32) qh@34(8 x u16) |
// IQ1_M qs@0(32) qh@32(16) scales@48(4 x u16, the f16 scale spread over their top nibbles).

// Sub-block s (32 elements) is 8 bytes: 4 grid indices, then a u32 of four 7-bit sign
// indices and a 4-bit scale on top.
template <>
struct BlockDecoder<DType::IQ2_XXS> {
  static constexpr int64_t kElems = 256, kBytes = 66;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks& books) {
    const uint8_t* sub = b + 2 + 8 * (g / 4);
    const int l = g % 4;
    const uint32_t aux = hd::load_u32(sub + 4);
    const float db = detail::iq_half_step_scale(hd::load_half(b), int(aux >> 28), 0.25f);
    const uint64_t grid = books.iq2xxs_grid[sub[l]];
    const uint8_t signs = books.ksigns_iq2xs[(aux >> (7 * l)) & 127];
    for (int j = 0; j < 8; ++j) out[j] = detail::apply_sign(db * float(detail::byte_of(grid, j)), signs, j);
  }
};

// Each u16 of qs: 9-bit grid index, 7-bit sign index; each scale byte covers one sub-block,
// low nibble for its first 16 elements.
template <>
struct BlockDecoder<DType::IQ2_XS> {
  static constexpr int64_t kElems = 256, kBytes = 74;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks& books) {
    const int s = (b[66 + g / 4] >> (4 * ((g % 4) / 2))) & 0x0F;
    const float db = detail::iq_half_step_scale(hd::load_half(b), s, 0.25f);
    const uint16_t q = hd::load_u16(b + 2 + 2 * g);
    const uint64_t grid = books.iq2xs_grid[q & 511];
    const uint8_t signs = books.ksigns_iq2xs[q >> 9];
    for (int j = 0; j < 8; ++j) out[j] = detail::apply_sign(db * float(detail::byte_of(grid, j)), signs, j);
  }
};

// 10-bit grid index: qs[g] plus 2 bits of qh[g/4]; a full sign byte per group.
template <>
struct BlockDecoder<DType::IQ2_S> {
  static constexpr int64_t kElems = 256, kBytes = 82;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks& books) {
    const int l = g % 4;
    const int s = (b[74 + g / 4] >> (4 * (l / 2))) & 0x0F;
    const float db = detail::iq_half_step_scale(hd::load_half(b), s, 0.25f);
    const int index = b[2 + g] | ((b[66 + g / 4] << (8 - 2 * l)) & 0x300);
    const uint64_t grid = books.iq2s_grid[index];
    const uint8_t signs = b[34 + g];
    for (int j = 0; j < 8; ++j) out[j] = detail::apply_sign(db * float(detail::byte_of(grid, j)), signs, j);
  }
};

template <>
struct BlockDecoder<DType::IQ3_XXS> {
  static constexpr int64_t kElems = 256, kBytes = 98;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks& books) {
    const int l = g % 4;
    const uint32_t aux = hd::load_u32(b + 66 + 4 * (g / 4));
    const float db = detail::iq_half_step_scale(hd::load_half(b), int(aux >> 28), 0.5f);
    const uint8_t signs = books.ksigns_iq2xs[(aux >> (7 * l)) & 127];
    const uint8_t* qs = b + 2 + 2 * g;
    const uint64_t grid = uint64_t(books.iq3xxs_grid[qs[0]]) | (uint64_t(books.iq3xxs_grid[qs[1]]) << 32);
    for (int j = 0; j < 8; ++j) out[j] = detail::apply_sign(db * float(detail::byte_of(grid, j)), signs, j);
  }
};

// 9-bit grid indices: qs[2g], qs[2g+1] plus bits 2l, 2l+1 of qh[g/4]; odd scale 1 + 2s.
template <>
struct BlockDecoder<DType::IQ3_S> {
  static constexpr int64_t kElems = 256, kBytes = 110;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks& books) {
    const int sub = g / 4, l = g % 4;
    const float db = hd::load_half(b) * float(1 + 2 * ((b[106 + sub / 2] >> (4 * (sub % 2))) & 0x0F));
    const int qh = b[66 + sub];
    const int i1 = b[2 + 2 * g] | ((qh << (8 - 2 * l)) & 256);
    const int i2 = b[3 + 2 * g] | ((qh << (7 - 2 * l)) & 256);
    const uint64_t grid = uint64_t(books.iq3s_grid[i1]) | (uint64_t(books.iq3s_grid[i2]) << 32);
    const uint8_t signs = b[74 + g];
    for (int j = 0; j < 8; ++j) out[j] = detail::apply_sign(db * float(detail::byte_of(grid, j)), signs, j);
  }
};

// Per sub-block u16: bits 3l..3l+2 extend grid index l to 11 bits, 12..14 the scale, 15 the
// sign of delta.
template <>
struct BlockDecoder<DType::IQ1_S> {
  static constexpr int64_t kElems = 256, kBytes = 50;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks& books) {
    const int l = g % 4;
    const uint16_t qh = hd::load_u16(b + 34 + 2 * (g / 4));
    const float dl = hd::load_half(b) * float(2 * ((qh >> 12) & 7) + 1);
    const float delta = (qh & 0x8000) ? -kIq1Delta : kIq1Delta;
    const uint64_t grid = books.iq1s_grid[b[2 + g] | (((qh >> (3 * l)) & 7) << 8)];
    for (int j = 0; j < 8; ++j) out[j] = dl * (float(int8_t(detail::byte_of(grid, j))) + delta);
  }
};

// Per group, a qh nibble: 3 bits extend the grid index, the 4th is the sign of delta. Each
// 16 elements have a 3-bit scale; the four u16 scale words carry the f16 block scale in
// their top nibbles.
template <>
struct BlockDecoder<DType::IQ1_M> {
  static constexpr int64_t kElems = 256, kBytes = 56;
  static DITRUN_HD void decode8(const uint8_t* b, int g, float* out, const Codebooks& books) {
    const uint16_t sc0 = hd::load_u16(b + 48), sc1 = hd::load_u16(b + 50);
    const uint16_t sc2 = hd::load_u16(b + 52), sc3 = hd::load_u16(b + 54);
    const float d = hd::half_to_float(
        uint16_t((sc0 >> 12) | ((sc1 >> 8) & 0x00F0) | ((sc2 >> 4) & 0x0F00) | (sc3 & 0xF000)));
    const int sub = g / 4, l = g % 4;
    const uint16_t sc = hd::load_u16(b + 48 + 2 * (sub / 2));
    const float dl = d * float(2 * ((sc >> (6 * (sub % 2) + 3 * (l / 2))) & 7) + 1);
    const int qh = b[32 + g / 2] >> (4 * (l % 2));  // this group's nibble in the low 4 bits
    const float delta = (qh & 0x08) ? -kIq1Delta : kIq1Delta;
    const uint64_t grid = books.iq1s_grid[b[g] | ((qh & 7) << 8)];
    for (int j = 0; j < 8; ++j) out[j] = dl * (float(int8_t(detail::byte_of(grid, j))) + delta);
  }
};

// Host-only: calls fn(BlockDecoder<T>{}) for `type`'s decoder; false when it has none (plain
// types decode elementwise through hd::, and some block types are not decodable yet).
template <class Fn>
bool visit_block_decoder(DType type, Fn&& fn) {
  switch (type) {
#define DITRUN_BLOCK_DECODER_CASE(T) \
  case DType::T: fn(BlockDecoder<DType::T>{}); return true;
    DITRUN_BLOCK_DECODER_CASE(Q4_0)
    DITRUN_BLOCK_DECODER_CASE(Q4_1)
    DITRUN_BLOCK_DECODER_CASE(Q5_0)
    DITRUN_BLOCK_DECODER_CASE(Q5_1)
    DITRUN_BLOCK_DECODER_CASE(Q8_0)
    DITRUN_BLOCK_DECODER_CASE(Q8_1)
    DITRUN_BLOCK_DECODER_CASE(Q2_K)
    DITRUN_BLOCK_DECODER_CASE(Q3_K)
    DITRUN_BLOCK_DECODER_CASE(Q4_K)
    DITRUN_BLOCK_DECODER_CASE(Q5_K)
    DITRUN_BLOCK_DECODER_CASE(Q6_K)
    DITRUN_BLOCK_DECODER_CASE(Q8_K)
    DITRUN_BLOCK_DECODER_CASE(IQ2_XXS)
    DITRUN_BLOCK_DECODER_CASE(IQ2_XS)
    DITRUN_BLOCK_DECODER_CASE(IQ3_XXS)
    DITRUN_BLOCK_DECODER_CASE(IQ1_S)
    DITRUN_BLOCK_DECODER_CASE(IQ4_NL)
    DITRUN_BLOCK_DECODER_CASE(IQ3_S)
    DITRUN_BLOCK_DECODER_CASE(IQ2_S)
    DITRUN_BLOCK_DECODER_CASE(IQ4_XS)
    DITRUN_BLOCK_DECODER_CASE(IQ1_M)
    DITRUN_BLOCK_DECODER_CASE(TQ1_0)
    DITRUN_BLOCK_DECODER_CASE(TQ2_0)
    DITRUN_BLOCK_DECODER_CASE(MXFP4)
#undef DITRUN_BLOCK_DECODER_CASE
    default: return false;
  }
}

}  // namespace ditrun::codecs
