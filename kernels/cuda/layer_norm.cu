// layer_norm and adaLN's layer_norm_modulate: one block per row, statistics in double over
// two passes (mean, then the mean squared deviation) as the CPU twin computes them, then one
// pass writing the normalized row. The row is read three times; at DiT widths (3072-5120)
// it stays in L1, so the kernel moves each byte through HBM once.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/kernel_checks.h"
#include "kernels/cuda_plan/launch_geometry.h"

namespace ditrun::kernels::cuda {
namespace {

struct RowStats {
  float mean, rstd;
};

template <class T>
__device__ RowStats row_stats(const T* in, int64_t n, float eps, double* scratch) {
  double s = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += double(load_f32(in + j));
  const double mean = block_sum(s, scratch) / double(n);
  double q = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const double d = double(load_f32(in + j)) - mean;
    q += d * d;
  }
  const double var = block_sum(q, scratch) / double(n);
  return {float(mean), float(1.0 / sqrt(var + double(eps)))};
}

template <class T>
__global__ void layer_norm_kernel(View<const T> x, View<T> y, float eps, Param gamma, bool has_gamma, Param beta,
                                  bool has_beta, int64_t batch0) {
  __shared__ double scratch[32];
  const int64_t r = blockIdx.x, b = batch0 + blockIdx.y;
  const T* in = x.row(b, r);
  T* out = y.row(b, r);
  const RowStats st = row_stats(in, x.cols, eps, scratch);
  for (int64_t j = threadIdx.x; j < x.cols; j += blockDim.x) {
    float v = (load_f32(in + j) - st.mean) * st.rstd;
    if (has_gamma) v *= gamma[j];
    if (has_beta) v += beta[j];
    store_f32(out + j, v);
  }
}

template <class T>
__global__ void layer_norm_modulate_kernel(View<const T> x, View<const T> mod, int shift_chunk, int scale_chunk,
                                           float eps, View<T> y, bool mod_broadcast, int64_t batch0) {
  __shared__ double scratch[32];
  const int64_t r = blockIdx.x, b = batch0 + blockIdx.y;
  const T* in = x.row(b, r);
  const T* shift = mod.row(mod_broadcast ? 0 : b, shift_chunk);
  const T* scale = mod.row(mod_broadcast ? 0 : b, scale_chunk);
  T* out = y.row(b, r);
  const RowStats st = row_stats(in, x.cols, eps, scratch);
  for (int64_t j = threadIdx.x; j < x.cols; j += blockDim.x)
    store_f32(out + j, (load_f32(in + j) - st.mean) * st.rstd * (1.0f + load_f32(scale + j)) + load_f32(shift + j));
}

Param device_param(const ParamRef* p) {
  if (!p) return Param{};
  return Param{p->data, detail::param_kind(p->dtype), p->round_bf16};
}

}  // namespace

void layer_norm(const Tensor& x, Tensor& y, float eps, const ParamRef* gamma, const ParamRef* beta,
                cudaStream_t stream) {
  constexpr std::string_view op = "layer_norm";
  detail::check_device_activation(op, "x", x);
  detail::check_device_activation(op, "y", y);
  detail::check_same_layout(op, "x", x, "y", y);
  detail::check_same_dtype(op, x, y);
  const int64_t c = x.cols();
  if (gamma) detail::check_param(op, "gamma", *gamma, c);
  if (beta) detail::check_param(op, "beta", *beta, c);
  if (c == 0 || x.rows() == 0 || x.batch() == 0) return;
  const auto launch = cuda_plan::per_row(x.batch(), x.rows(), c, 1, 512);
  for (int64_t b0 = 0; b0 < x.batch(); b0 += launch.grid_y) {
    const dim3 grid(unsigned(launch.grid_x), unsigned(std::min(launch.grid_y, x.batch() - b0)));
    if (x.dtype() == DType::F32)
      layer_norm_kernel<float><<<grid, launch.block, 0, stream>>>(view_of<const float>(x), view_of<float>(y), eps,
                                                                  device_param(gamma), gamma, device_param(beta), beta, b0);
    else
      layer_norm_kernel<bf16><<<grid, launch.block, 0, stream>>>(view_of<const bf16>(x), view_of<bf16>(y), eps,
                                                                 device_param(gamma), gamma, device_param(beta), beta, b0);
    check_launch(op);
  }
}

void layer_norm_modulate(const Tensor& x, const Tensor& mod, int shift_chunk, int scale_chunk, float eps, Tensor& y,
                         cudaStream_t stream) {
  constexpr std::string_view op = "layer_norm_modulate";
  detail::check_device_activation(op, "x", x);
  detail::check_device_activation(op, "y", y);
  detail::check_device_activation(op, "mod", mod);
  detail::check_same_layout(op, "x", x, "y", y);
  detail::check_same_dtype(op, x, y);
  detail::check_same_dtype(op, x, mod);
  detail::check_mod(op, mod, shift_chunk, x.batch(), x.cols());
  detail::check_mod(op, mod, scale_chunk, x.batch(), x.cols());
  const int64_t c = x.cols();
  if (c == 0 || x.rows() == 0 || x.batch() == 0) return;
  const bool broadcast = mod.batch() == 1;
  const auto launch = cuda_plan::per_row(x.batch(), x.rows(), c, 1, 512);
  for (int64_t b0 = 0; b0 < x.batch(); b0 += launch.grid_y) {
    const dim3 grid(unsigned(launch.grid_x), unsigned(std::min(launch.grid_y, x.batch() - b0)));
    if (x.dtype() == DType::F32)
      layer_norm_modulate_kernel<float><<<grid, launch.block, 0, stream>>>(
          view_of<const float>(x), view_of<const float>(mod), shift_chunk, scale_chunk, eps, view_of<float>(y),
          broadcast, b0);
    else
      layer_norm_modulate_kernel<bf16><<<grid, launch.block, 0, stream>>>(
          view_of<const bf16>(x), view_of<const bf16>(mod), shift_chunk, scale_chunk, eps, view_of<bf16>(y),
          broadcast, b0);
    check_launch(op);
  }
}

}  // namespace ditrun::kernels::cuda
