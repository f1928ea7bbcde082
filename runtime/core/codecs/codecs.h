// CPU codecs behind the dtype table (internal to runtime/core). Each decoder takes a whole
// number of blocks. Formulas follow ggml's reference dequantizers bit for bit: every value is
// computed in f32 in the order ggml evaluates it (see docs/formats.md). The block types decode
// through block_decoders.h, the code the CUDA kernels share.
#pragma once

#include <cstdint>
#include <cstring>

#include "runtime/core/float_codecs.h"
#include "runtime/core/host_device.h"

namespace ditrun::codecs {

// Little-endian loads from unaligned block bytes (GGUF blocks are only 2-byte aligned).
inline uint16_t load_u16(const uint8_t* p) { return hd::load_u16(p); }
inline uint32_t load_u32(const uint8_t* p) { return hd::load_u32(p); }
inline float load_f16(const uint8_t* p) { return hd::load_half(p); }
inline void store_u16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
inline void store_f16(uint8_t* p, float v) { store_u16(p, f32_to_f16(v)); }

// Plain types.
void dequant_f32(const uint8_t* src, float* dst, int64_t n);
void dequant_f16(const uint8_t* src, float* dst, int64_t n);
void dequant_bf16(const uint8_t* src, float* dst, int64_t n);
void dequant_f64(const uint8_t* src, float* dst, int64_t n);
void dequant_f8_e4m3(const uint8_t* src, float* dst, int64_t n);
void dequant_f8_e5m2(const uint8_t* src, float* dst, int64_t n);
void dequant_f8_e8m0(const uint8_t* src, float* dst, int64_t n);
void dequant_i8(const uint8_t* src, float* dst, int64_t n);
void dequant_i16(const uint8_t* src, float* dst, int64_t n);
void dequant_i32(const uint8_t* src, float* dst, int64_t n);
void dequant_i64(const uint8_t* src, float* dst, int64_t n);
void dequant_u8(const uint8_t* src, float* dst, int64_t n);
void dequant_u16(const uint8_t* src, float* dst, int64_t n);
void dequant_u32(const uint8_t* src, float* dst, int64_t n);
void dequant_u64(const uint8_t* src, float* dst, int64_t n);
void quant_f32(const float* src, uint8_t* dst, int64_t n);
void quant_f16(const float* src, uint8_t* dst, int64_t n);
void quant_bf16(const float* src, uint8_t* dst, int64_t n);
void quant_f8_e4m3(const float* src, uint8_t* dst, int64_t n);
void quant_f8_e5m2(const float* src, uint8_t* dst, int64_t n);

// ggml legacy 32-element blocks.
void dequant_q4_0(const uint8_t* src, float* dst, int64_t n);
void dequant_q4_1(const uint8_t* src, float* dst, int64_t n);
void dequant_q5_0(const uint8_t* src, float* dst, int64_t n);
void dequant_q5_1(const uint8_t* src, float* dst, int64_t n);
void dequant_q8_0(const uint8_t* src, float* dst, int64_t n);
void dequant_q8_1(const uint8_t* src, float* dst, int64_t n);
void quant_q4_0(const float* src, uint8_t* dst, int64_t n);
void quant_q4_1(const float* src, uint8_t* dst, int64_t n);
void quant_q5_0(const float* src, uint8_t* dst, int64_t n);
void quant_q5_1(const float* src, uint8_t* dst, int64_t n);
void quant_q8_0(const float* src, uint8_t* dst, int64_t n);

// ggml K-quants (256-element super-blocks).
void dequant_q2_k(const uint8_t* src, float* dst, int64_t n);
void dequant_q3_k(const uint8_t* src, float* dst, int64_t n);
void dequant_q4_k(const uint8_t* src, float* dst, int64_t n);
void dequant_q5_k(const uint8_t* src, float* dst, int64_t n);
void dequant_q6_k(const uint8_t* src, float* dst, int64_t n);
void dequant_q8_k(const uint8_t* src, float* dst, int64_t n);
void quant_q2_k(const float* src, uint8_t* dst, int64_t n);
void quant_q3_k(const float* src, uint8_t* dst, int64_t n);
void quant_q4_k(const float* src, uint8_t* dst, int64_t n);
void quant_q5_k(const float* src, uint8_t* dst, int64_t n);
void quant_q6_k(const float* src, uint8_t* dst, int64_t n);

// Non-linear 4-bit codebooks, ternary and microscaling types.
void dequant_iq4_nl(const uint8_t* src, float* dst, int64_t n);
void dequant_iq4_xs(const uint8_t* src, float* dst, int64_t n);
void quant_iq4_nl(const float* src, uint8_t* dst, int64_t n);
void dequant_tq1_0(const uint8_t* src, float* dst, int64_t n);
void dequant_tq2_0(const uint8_t* src, float* dst, int64_t n);
void dequant_mxfp4(const uint8_t* src, float* dst, int64_t n);

// Lattice codebook types (IQ2 / IQ3 / IQ1).
void dequant_iq2_xxs(const uint8_t* src, float* dst, int64_t n);
void dequant_iq2_xs(const uint8_t* src, float* dst, int64_t n);
void dequant_iq2_s(const uint8_t* src, float* dst, int64_t n);
void dequant_iq3_xxs(const uint8_t* src, float* dst, int64_t n);
void dequant_iq3_s(const uint8_t* src, float* dst, int64_t n);
void dequant_iq1_s(const uint8_t* src, float* dst, int64_t n);
void dequant_iq1_m(const uint8_t* src, float* dst, int64_t n);

}  // namespace ditrun::codecs
