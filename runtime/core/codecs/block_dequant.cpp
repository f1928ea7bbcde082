// The CPU decoders of the GGUF block types whose groups vectorize well: legacy, K-quants,
// ternary. Compiled with -ffp-contract=off (see block_decoders.h).
#include "runtime/core/codecs/block_loop.h"
#include "runtime/core/codecs/codecs.h"

namespace ditrun::codecs {

void dequant_q4_0(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q4_0>(src, dst, n); }
void dequant_q4_1(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q4_1>(src, dst, n); }
void dequant_q5_0(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q5_0>(src, dst, n); }
void dequant_q5_1(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q5_1>(src, dst, n); }
void dequant_q8_0(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q8_0>(src, dst, n); }
void dequant_q8_1(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q8_1>(src, dst, n); }
void dequant_q2_k(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q2_K>(src, dst, n); }
void dequant_q3_k(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q3_K>(src, dst, n); }
void dequant_q4_k(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q4_K>(src, dst, n); }
void dequant_q5_k(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q5_K>(src, dst, n); }
void dequant_q6_k(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q6_K>(src, dst, n); }
void dequant_q8_k(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::Q8_K>(src, dst, n); }
void dequant_tq1_0(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::TQ1_0>(src, dst, n); }
void dequant_tq2_0(const uint8_t* src, float* dst, int64_t n) { decode_blocks<DType::TQ2_0>(src, dst, n); }

}  // namespace ditrun::codecs
