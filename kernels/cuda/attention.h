// Attention for the CUDA backend (Backend::attention): out = softmax(q kᵀ / sqrt(D)) v per
// batch item and head; q [B, Lq, H·D], k and v [B, Lk, H·D], out like q; any row and batch
// strides (q, k, v are often column slices of one fused qkv buffer). kv_lens (empty, or one
// per batch item) masks keys at and after that length; a length of 0 gives zeros.
//
// Two implementations: flash_attention, the own kernels (bf16 on tensor cores, f32 on the
// SIMT cores for the f32 mode that reproduces the CPU backend), and CudnnAttention
// (cudnn_attention.h), cuDNN's fused SDPA for bf16 where it takes the shape. Both validate
// their arguments with one-line ditrun::Errors naming the op and the shapes, before launching.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <span>

#include "kernels/cuda_plan/attention_plan.h"
#include "runtime/core/tensor.h"

namespace ditrun::kernels::cuda {

// All four tensors on the device in one dtype (F32 or BF16); head dim up to 256. Asynchronous
// on `stream`; kv_lens are passed to the kernels by value (no copy, no synchronization).
void flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
                     std::span<const int64_t> kv_lens, cudaStream_t stream);
// The f32 kernel, also writing each row's log-sum-exp into lse (contiguous [B, Lq, H] f32 on
// the device): ring attention's partial results. F32 tensors only.
// The f32 kernel with the scores scale·q·kᵀ + bias[b or 0, h·Lq + i, j] (scale 0: 1/sqrt(D));
// q, k, v, out and bias f32 (the CPU twin: kernels::cpu::attention_biased).
void flash_attention_biased(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads, float scale,
                            const Tensor& bias, std::span<const int64_t> kv_lens, cudaStream_t stream);
void flash_attention_lse(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, int64_t heads,
                         std::span<const int64_t> kv_lens, cudaStream_t stream);

namespace detail {
// The checks every attention implementation shares (devices, dtypes, layouts, heads, kv
// lengths), and the call as the planners see it.
cuda_plan::AttentionShape attention_shape(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                          int64_t heads, std::span<const int64_t> kv_lens);
}  // namespace detail

}  // namespace ditrun::kernels::cuda
