// Weight decoding on the device: any storage type the dtype table decodes (every GGUF block
// type through the shared __host__ __device__ decoders of runtime/core/codecs/block_decoders.h,
// the plain and fp8 types elementwise), scales applied as Weight::dequantize applies them,
// into a contiguous row-major f32 or bf16 array. Bit-exact with the CPU decode in f32 (the
// kernels are compiled without FMA contraction, like the CPU codecs); bf16 output is that
// value rounded to nearest even.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/weight_ref.h"

namespace ditrun::kernels::cuda {

// Whether dequantize() can decode `storage` on the device.
bool can_dequantize(DType storage);
// Rows [row_begin, row_end) of `w` into `out` (row_end - row_begin rows of w.cols() values).
void dequantize(const WeightRef& w, int64_t row_begin, int64_t row_end, void* out, DType out_dtype, cudaStream_t stream);
inline void dequantize(const WeightRef& w, void* out, DType out_dtype, cudaStream_t stream) {
  dequantize(w, 0, w.rows(), out, out_dtype, stream);
}

}  // namespace ditrun::kernels::cuda
