// rms_norm over groups of columns: Flux normalizes each 128-wide head of q and k, Wan the
// whole 5120-wide row. Narrow groups get one warp each (no block barrier); wide groups are
// reduced by the whole block. Mean squares accumulate in double, as the CPU twin's.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/kernel_checks.h"
#include "kernels/cuda_plan/launch_geometry.h"

namespace ditrun::kernels::cuda {
namespace {

constexpr int64_t kWarpGroupLimit = 512;  // groups up to this width get a warp each
constexpr int kThreads = 256;

template <class T>
__global__ void rms_norm_warp_groups(View<const T> x, View<T> y, Param scale, int64_t group, float eps, int64_t batch0) {
  const int64_t r = blockIdx.x, b = batch0 + blockIdx.y;
  const T* in = x.row(b, r);
  T* out = y.row(b, r);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  for (int64_t g0 = int64_t(warp) * group; g0 < x.cols; g0 += int64_t(warps) * group) {
    double acc = 0;
    for (int64_t j = lane; j < group; j += 32) {
      const double v = load_f32(in + g0 + j);
      acc += v * v;
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xFFFFFFFFu, acc, o);
    const float rrms = float(1.0 / sqrt(acc / double(group) + double(eps)));
    for (int64_t j = lane; j < group; j += 32) store_f32(out + g0 + j, load_f32(in + g0 + j) * rrms * scale[j]);
  }
}

template <class T>
__global__ void rms_norm_block_groups(View<const T> x, View<T> y, Param scale, int64_t group, float eps,
                                      int64_t batch0) {
  __shared__ double scratch[32];
  const int64_t r = blockIdx.x, b = batch0 + blockIdx.y;
  const T* in = x.row(b, r);
  T* out = y.row(b, r);
  for (int64_t g0 = 0; g0 < x.cols; g0 += group) {
    double acc = 0;
    for (int64_t j = threadIdx.x; j < group; j += blockDim.x) {
      const double v = load_f32(in + g0 + j);
      acc += v * v;
    }
    const float rrms = float(1.0 / sqrt(block_sum(acc, scratch) / double(group) + double(eps)));
    for (int64_t j = threadIdx.x; j < group; j += blockDim.x)
      store_f32(out + g0 + j, load_f32(in + g0 + j) * rrms * scale[j]);
  }
}

template <class T>
void launch(const Tensor& x, Tensor& y, const Param& scale, int64_t group, float eps, cudaStream_t stream) {
  const auto geometry = cuda_plan::per_row(x.batch(), x.rows(), 1, 1);
  for (int64_t b0 = 0; b0 < x.batch(); b0 += geometry.grid_y) {
    const dim3 grid(unsigned(geometry.grid_x), unsigned(std::min(geometry.grid_y, x.batch() - b0)));
    if (group <= kWarpGroupLimit)
      rms_norm_warp_groups<T><<<grid, kThreads, 0, stream>>>(view_of<const T>(x), view_of<T>(y), scale, group, eps, b0);
    else
      rms_norm_block_groups<T><<<grid, kThreads, 0, stream>>>(view_of<const T>(x), view_of<T>(y), scale, group, eps, b0);
    check_launch("rms_norm");
  }
}

}  // namespace

void rms_norm(const Tensor& x, Tensor& y, const ParamRef& scale, int64_t group, float eps, cudaStream_t stream) {
  constexpr std::string_view op = "rms_norm";
  detail::check_device_activation(op, "x", x);
  detail::check_device_activation(op, "y", y);
  detail::check_same_layout(op, "x", x, "y", y);
  detail::check_same_dtype(op, x, y);
  const int64_t c = x.cols();
  detail::check_rms_norm_group(x, group);
  detail::check_param(op, "scale", scale, group);
  if (c == 0 || x.rows() == 0 || x.batch() == 0) return;
  const Param p{scale.data, detail::param_kind(scale.dtype), scale.round_bf16};
  if (x.dtype() == DType::F32) launch<float>(x, y, p, group, eps, stream);
  else launch<bf16>(x, y, p, group, eps, stream);
}

}  // namespace ditrun::kernels::cuda
