// Functions that compile for the host and for CUDA devices alike: the device math shared by
// the CPU codecs and the CUDA kernels (DESIGN.md: one definition, tested bit-exact on the
// host, reused by the kernels). Under nvcc, DITRUN_HD marks them __host__ __device__
// __forceinline__; under a plain C++ compiler, always-inline too (the CPU codecs unroll a
// block's decoders and rely on every call being inlined to share their work).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define DITRUN_HD __host__ __device__ __forceinline__
#else
#define DITRUN_HD inline __attribute__((always_inline))
#endif

namespace ditrun::hd {

DITRUN_HD float bits_to_float(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

DITRUN_HD uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
#endif
}

// Little-endian loads from unaligned bytes (GGUF blocks are only 2-byte aligned, and many
// block sizes are odd): byte by byte, which is also what keeps them legal on a GPU.
DITRUN_HD uint16_t load_u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
DITRUN_HD uint32_t load_u32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

// IEEE binary16 to f32, exact (NaN payloads kept). Branch-free, so that a decoder calling it
// once per group of 8 lets the compiler share one conversion across the groups of a block.
DITRUN_HD float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7FFFu;
  uint32_t normal = (em << 13) + (112u << 23);  // exponent bias 15 -> 127
  normal += em >= 0x7C00u ? 112u << 23 : 0u;     // inf / nan: exponent 31 -> 255
  const float subnormal = float(em) * 0x1p-24f;  // em < 0x400: em * 2^-24, exact (0 too)
  return bits_to_float(sign | (em < 0x400u ? float_to_bits(subnormal) : normal));
}
DITRUN_HD float load_half(const uint8_t* p) { return half_to_float(load_u16(p)); }

DITRUN_HD float bf16_to_float(uint16_t b) { return bits_to_float(uint32_t(b) << 16); }

// f32 to the nearest bfloat16 (ties to even); NaN stays a quiet NaN.
DITRUN_HD uint16_t float_to_bf16(float f) {
  uint32_t x = float_to_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x >> 16) | 0x40u);
  x += 0x7FFFu + ((x >> 16) & 1u);
  return uint16_t(x >> 16);
}

// float8 e4m3fn (bias 7, no infinities, S.1111.111 is NaN) to f32, exact.
DITRUN_HD float e4m3_to_float(uint8_t v) {
  const uint32_t sign = uint32_t(v & 0x80u) << 24;
  const uint32_t exp = (v >> 3) & 0xFu;
  const uint32_t mant = v & 0x7u;
  if (exp == 0xF && mant == 0x7) return bits_to_float(sign | 0x7FC00000u);
  if (exp == 0) {
    const float r = float(mant) * 0x1p-9f;  // subnormal: mant * 2^-9
    return sign ? -r : r;
  }
  return bits_to_float(sign | ((exp + 120u) << 23) | (mant << 20));
}

// float8 e5m2 (IEEE-like, bias 15) is the top byte of a binary16.
DITRUN_HD float e5m2_to_float(uint8_t v) { return half_to_float(uint16_t(uint16_t(v) << 8)); }

}  // namespace ditrun::hd
