// The CPU decoders of the GGUF types that look their values up in a codebook (IQ4, MXFP4, the
// IQ1/IQ2/IQ3 lattices). Compiled with -ffp-contract=off (see block_decoders.h) and without
// SLP vectorization: gathering looked-up values into vectors measured slower than scalar code.
#include "runtime/core/codecs/block_loop.h"
#include "runtime/core/codecs/codecs.h"

namespace ditrun::codecs {

void dequant_iq4_nl(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::IQ4_NL>(src, dst, n); }
void dequant_iq4_xs(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::IQ4_XS>(src, dst, n); }
void dequant_mxfp4(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::MXFP4>(src, dst, n); }
void dequant_iq2_xxs(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::IQ2_XXS>(src, dst, n); }
void dequant_iq2_xs(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::IQ2_XS>(src, dst, n); }
void dequant_iq2_s(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::IQ2_S>(src, dst, n); }
void dequant_iq3_xxs(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::IQ3_XXS>(src, dst, n); }
void dequant_iq3_s(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::IQ3_S>(src, dst, n); }
void dequant_iq1_s(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::IQ1_S>(src, dst, n); }
void dequant_iq1_m(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::IQ1_M>(src, dst, n); }

}  // namespace ditrun::codecs
