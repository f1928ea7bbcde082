// Device-side helpers every elementwise and row-wise kernel shares: the two activation types
// (f32, bf16) behind one load/store, views of [batch][row][col] tensors as kernels see them,
// small parameters (bias, gamma, norm scales) read in their storage type, and block-wide sums.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/core/dtype.h"
#include "runtime/core/host_device.h"
#include "runtime/core/tensor.h"

namespace ditrun::kernels::cuda {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float load_f32(const float* p) { return *p; }
__device__ __forceinline__ float load_f32(const bf16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void store_f32(float* p, float v) { *p = v; }
// Round to nearest even, as the CPU backend's bf16 rounding (NaN stays NaN).
__device__ __forceinline__ void store_f32(bf16* p, float v) { *p = __float2bfloat16_rn(v); }

// A view as kernels index it: element (b, r, c) at base[b·batch_stride + r·row_stride + c].
template <class T>
struct View {
  T* base;
  int64_t rows, cols, row_stride, batch_stride;
  __device__ __forceinline__ T* row(int64_t b, int64_t r) const { return base + b * batch_stride + r * row_stride; }
};

template <class T>
View<T> view_of(const Tensor& t) {
  return View<T>{static_cast<T*>(t.data()), t.rows(), t.cols(), t.row_stride(), t.batch_stride()};
}

// A small parameter in device memory, read in its storage type (f32, bf16 or f16) and, in
// BF16 mode, rounded to bf16 as the CPU backend's param_values rounds it.
struct Param {
  const void* data = nullptr;
  uint8_t kind = 0;  // 0 f32, 1 bf16, 2 f16
  bool round_bf16 = false;
  __device__ __forceinline__ float operator[](int64_t j) const {
    float v;
    if (kind == 0) v = static_cast<const float*>(data)[j];
    else if (kind == 1) v = hd::bf16_to_float(static_cast<const uint16_t*>(data)[j]);
    else v = hd::half_to_float(static_cast<const uint16_t*>(data)[j]);
    return round_bf16 ? hd::bf16_to_float(hd::float_to_bf16(v)) : v;
  }
};

// Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
// `scratch` holds 32 doubles of shared memory. Double, as the CPU's row statistics: a row of
// thousands of activations loses nothing to cancellation.
__device__ __forceinline__ double block_sum(double v, double* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = lane < warps ? scratch[lane] : 0.0;
  for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xFFFFFFFFu, total, o);
  return total;
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = lane < warps ? scratch[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o));
  return m;
}

}  // namespace ditrun::kernels::cuda
