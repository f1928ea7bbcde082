// fp8 e4m3 quantization of activations (see fp8_quantize.h).
//   per tensor: a grid-wide amax (atomicMax on the float's bits: non-negative floats order as
//               their bit patterns, and max is order-independent, so the result is exact and
//               deterministic), then a quantizing pass that derives the scale from it
//   per row:    one block per token row, block max, quantize
//   per block:  one warp per 128 columns of a row
#include <cuda_fp8.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/fp8_quantize.h"
#include "kernels/cuda/kernel_checks.h"
#include "kernels/cuda_plan/launch_geometry.h"

namespace ditrun::kernels::cuda {
namespace {

using cuda_plan::ScaleMode;

__device__ __forceinline__ uint8_t to_e4m3(float v) {
  return uint8_t(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}
// The scale that maps amax onto e4m3's largest finite value; 1 for an all-zero input.
__device__ __forceinline__ float scale_for(float amax) { return amax > 0.0f ? amax / kE4m3Max : 1.0f; }

template <class T>
__global__ void amax_kernel(View<const T> x, int64_t batch, unsigned int* amax_bits) {
  __shared__ float scratch[32];
  float m = 0.0f;
  const int64_t n = batch * x.rows * x.cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % x.cols, rb = i / x.cols;
    m = fmaxf(m, fabsf(load_f32(x.row(rb / x.rows, rb % x.rows) + c)));
  }
  m = block_max(m, scratch);
  if (threadIdx.x == 0) atomicMax(amax_bits, __float_as_uint(m));
}

template <class T>
__global__ void quantize_tensor_kernel(View<const T> x, int64_t batch, const unsigned int* amax_bits,
                                       float static_scale, uint8_t* codes, float* scale_out) {
  const float scale = static_scale > 0.0f ? static_scale : scale_for(__uint_as_float(*amax_bits));
  const float inv = 1.0f / scale;
  if (blockIdx.x == 0 && threadIdx.x == 0) *scale_out = scale;
  const int64_t n = batch * x.rows * x.cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % x.cols, rb = i / x.cols;
    codes[i] = to_e4m3(load_f32(x.row(rb / x.rows, rb % x.rows) + c) * inv);
  }
}

template <class T>
__global__ void quantize_rows_kernel(View<const T> x, uint8_t* codes, float* scales) {
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x;  // token index over batch·rows
  const T* in = x.row(t / x.rows, t % x.rows);
  float m = 0.0f;
  for (int64_t j = threadIdx.x; j < x.cols; j += blockDim.x) m = fmaxf(m, fabsf(load_f32(in + j)));
  const float scale = scale_for(block_max(m, scratch));
  const float inv = 1.0f / scale;
  if (threadIdx.x == 0) scales[t] = scale;
  for (int64_t j = threadIdx.x; j < x.cols; j += blockDim.x) codes[t * x.cols + j] = to_e4m3(load_f32(in + j) * inv);
}

// One warp per (token, 128-column block); each lane holds 4 values.
template <class T>
__global__ void quantize_blocks_kernel(View<const T> x, int64_t tokens, int64_t blocks_per_row, uint8_t* codes,
                                       float* scales) {
  const int64_t warp = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= tokens * blocks_per_row) return;  // whole warps exit together
  const int64_t t = warp / blocks_per_row, blk = warp % blocks_per_row;
  const T* in = x.row(t / x.rows, t % x.rows) + blk * 128;
  const int64_t width = min(int64_t(128), x.cols - blk * 128);
  float v[4];
  float m = 0.0f;
  for (int i = 0; i < 4; ++i) {
    const int64_t j = lane + 32 * i;
    v[i] = j < width ? load_f32(in + j) : 0.0f;
    m = fmaxf(m, fabsf(v[i]));
  }
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o));
  const float scale = scale_for(m), inv = 1.0f / scale;
  if (lane == 0) scales[t + blk * tokens] = scale;  // N-major: index t + b·N
  uint8_t* out = codes + t * x.cols + blk * 128;
  for (int i = 0; i < 4; ++i) {
    const int64_t j = lane + 32 * i;
    if (j < width) out[j] = to_e4m3(v[i] * inv);
  }
}

template <class T>
void launch(const Tensor& x, uint8_t* codes, float* scales, ScaleMode mode, float static_scale, void* scratch,
            cudaStream_t stream) {
  const View<const T> v = view_of<const T>(x);
  const int64_t tokens = x.batch() * x.rows(), cols = x.cols();
  switch (mode) {
    case ScaleMode::Scalar32F: {
      auto* amax = static_cast<unsigned int*>(scratch);
      const auto g = cuda_plan::grid_stride(tokens * cols, 256, 2048);
      if (static_scale <= 0.0f) {
        check_cuda(cudaMemsetAsync(amax, 0, sizeof(unsigned int), stream), "quantize_fp8: clear amax");
        amax_kernel<T><<<unsigned(g.grid_x), g.block, 0, stream>>>(v, x.batch(), amax);
        check_launch("quantize_fp8 (amax)");
      }
      quantize_tensor_kernel<T><<<unsigned(g.grid_x), g.block, 0, stream>>>(v, x.batch(), amax, static_scale, codes, scales);
      break;
    }
    case ScaleMode::OuterVec32F: {
      const auto g = cuda_plan::per_row(1, tokens, cols, 1, 512);
      quantize_rows_kernel<T><<<unsigned(g.grid_x), g.block, 0, stream>>>(v, codes, scales);
      break;
    }
    case ScaleMode::Vec128_32F: {
      const int64_t blocks_per_row = (cols + 127) / 128;
      const int64_t threads = tokens * blocks_per_row * 32;
      quantize_blocks_kernel<T><<<unsigned(cuda_plan::blocks_for(threads, 256)), 256, 0, stream>>>(v, tokens, blocks_per_row,
                                                                                              codes, scales);
      break;
    }
    default: throw_cuda_error(cudaErrorInvalidValue, "quantize_fp8: a scale mode not used for activations");
  }
  check_launch("quantize_fp8");
}

}  // namespace

void quantize_fp8(const Tensor& x, uint8_t* codes, float* scales, ScaleMode mode, std::optional<float> static_scale,
                  void* scratch, cudaStream_t stream) {
  constexpr std::string_view op = "quantize_fp8";
  detail::check_device_activation(op, "x", x);
  if (static_scale) detail::check_fp8_static_scale(*static_scale, mode == ScaleMode::Scalar32F);
  if (x.numel() == 0) return;
  const float s = static_scale.value_or(0.0f);
  if (x.dtype() == DType::F32) launch<float>(x, codes, scales, mode, s, scratch, stream);
  else launch<bf16>(x, codes, scales, mode, s, scratch, stream);
}

}  // namespace ditrun::kernels::cuda
