// The CUDA kernels' launchers: one function per Backend op (runtime/backend/backend.h states
// the semantics), on device tensors of the activation dtype (F32 or BF16), views included.
// Each has a CPU twin in kernels/cpu with the same name and semantics, and a comparison test
// in tests/gpu. Launches are asynchronous on `stream`; argument errors are one-line
// ditrun::Errors naming the op and the shapes, raised before anything is launched.
//
// Small parameters (gamma, beta, norm scales) arrive as ParamRef: device bytes in f32, bf16
// or f16, read and (in BF16 mode) rounded inside the kernel, so streamed weights need no
// decoding pass. GEMMs, attention and weight decoding have headers of their own.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "runtime/core/tensor.h"

namespace ditrun::kernels::cuda {

struct ParamRef {
  const void* data = nullptr;  // device memory
  DType dtype = DType::F32;    // F32, BF16 or F16
  int64_t count = 0;
  bool round_bf16 = false;
};

void layer_norm(const Tensor& x, Tensor& y, float eps, const ParamRef* gamma, const ParamRef* beta, cudaStream_t stream);
void layer_norm_modulate(const Tensor& x, const Tensor& mod, int shift_chunk, int scale_chunk, float eps, Tensor& y,
                         cudaStream_t stream);
void rms_norm(const Tensor& x, Tensor& y, const ParamRef& scale, int64_t group, float eps, cudaStream_t stream);
void rope(Tensor& x, const Tensor& table, int64_t heads, cudaStream_t stream);
void gelu_tanh(const Tensor& x, Tensor& y, cudaStream_t stream);
void gelu(const Tensor& x, Tensor& y, cudaStream_t stream);
void silu(const Tensor& x, Tensor& y, cudaStream_t stream);
void quick_gelu(const Tensor& x, Tensor& y, cudaStream_t stream);
void add(const Tensor& a, const Tensor& b, Tensor& y, cudaStream_t stream);
void mul(const Tensor& a, const Tensor& b, Tensor& y, cudaStream_t stream);  // same layout
void gated_add(Tensor& x, const Tensor& y, const Tensor& mod, int gate_chunk, cudaStream_t stream);
// dst = src for any two views of the same layout; F32 and BF16 in any combination (to bf16
// rounds to nearest even).
void copy(const Tensor& src, Tensor& dst, cudaStream_t stream);
// `count` parameter values into a contiguous f32 or bf16 device array (bias for a GEMM
// epilogue of that type), rounded as ParamRef says.
void convert_param(const ParamRef& param, void* out, DType out_dtype, cudaStream_t stream);

}  // namespace ditrun::kernels::cuda
