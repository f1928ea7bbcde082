// Elementwise ops over [batch][row][col] views: the two activations (SiLU, tanh-GELU), add
// with batch broadcast, adaLN's gated residual, copies that convert between f32 and bf16,
// and parameter conversion for GEMM epilogues. One block per row, threads striding over
// the columns (consecutive threads, consecutive addresses).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/kernel_checks.h"
#include "kernels/cuda_plan/launch_geometry.h"

namespace ditrun::kernels::cuda {
namespace {

// x / (1 + e^a(x)): SiLU with a = −x; tanh-GELU with a = −2u, u = sqrt(2/pi)(x + 0.044715x³)
// (0.5(1 + tanh u) = 1 / (1 + e^(−2u)), as the CPU twin computes it).
struct Silu {
  __device__ float operator()(float v) const { return v / (1.0f + expf(-v)); }
};
struct QuickGelu {  // CLIP's: x·sigmoid(1.702·x)
  __device__ float operator()(float v) const { return v / (1.0f + expf(-1.702f * v)); }
};
struct Gelu {
  __device__ float operator()(float v) const { return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f)); }
};

struct GeluTanh {
  __device__ float operator()(float v) const {
    return v / (1.0f + expf(-2.0f * 0.7978845608028654f * (v + 0.044715f * v * v * v)));
  }
};

template <class T, class Fn>
__global__ void map_kernel(View<const T> x, View<T> y, Fn fn, int64_t batch0) {
  const int64_t r = blockIdx.x, b = batch0 + blockIdx.y;
  const T* in = x.row(b, r);
  T* out = y.row(b, r);
  for (int64_t j = threadIdx.x; j < x.cols; j += blockDim.x) store_f32(out + j, fn(load_f32(in + j)));
}

template <class T>
__global__ void add_kernel(View<const T> a, View<const T> bb, View<T> y, bool broadcast, int64_t batch0) {
  const int64_t r = blockIdx.x, b = batch0 + blockIdx.y;
  const T* pa = a.row(b, r);
  const T* pb = bb.row(broadcast ? 0 : b, r);
  T* out = y.row(b, r);
  for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) store_f32(out + j, load_f32(pa + j) + load_f32(pb + j));
}

template <class T>
__global__ void mul_kernel(View<const T> a, View<const T> bb, View<T> y, int64_t batch0) {
  const int64_t r = blockIdx.x, b = batch0 + blockIdx.y;
  const T* pa = a.row(b, r);
  const T* pb = bb.row(b, r);
  T* out = y.row(b, r);
  for (int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) store_f32(out + j, load_f32(pa + j) * load_f32(pb + j));
}

template <class T>
__global__ void gated_add_kernel(View<T> x, View<const T> y, View<const T> mod, int gate_chunk, bool broadcast,
                                 int64_t batch0) {
  const int64_t r = blockIdx.x, b = batch0 + blockIdx.y;
  T* out = x.row(b, r);
  const T* in = y.row(b, r);
  const T* gate = mod.row(broadcast ? 0 : b, gate_chunk);
  for (int64_t j = threadIdx.x; j < x.cols; j += blockDim.x)
    store_f32(out + j, load_f32(out + j) + load_f32(gate + j) * load_f32(in + j));
}

template <class S, class D>
__global__ void copy_kernel(View<const S> src, View<D> dst, int64_t batch0) {
  const int64_t r = blockIdx.x, b = batch0 + blockIdx.y;
  const S* in = src.row(b, r);
  D* out = dst.row(b, r);
  for (int64_t j = threadIdx.x; j < src.cols; j += blockDim.x) store_f32(out + j, load_f32(in + j));
}

template <class D>
__global__ void convert_param_kernel(Param p, D* out, int64_t n) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < n; j += int64_t(gridDim.x) * blockDim.x)
    store_f32(out + j, p[j]);
}

// Runs `launch(grid, block, batch0)` over the batch in chunks grid.y can hold.
template <class Launch>
void for_rows(const Tensor& t, Launch&& launch) {
  if (t.cols() == 0 || t.rows() == 0 || t.batch() == 0) return;
  const auto g = cuda_plan::per_row(t.batch(), t.rows(), t.cols(), 1, 512);
  for (int64_t b0 = 0; b0 < t.batch(); b0 += g.grid_y)
    launch(dim3(unsigned(g.grid_x), unsigned(std::min(g.grid_y, t.batch() - b0))), g.block, b0);
}

template <class Fn>
void map(std::string_view op, const Tensor& x, Tensor& y, Fn fn, cudaStream_t stream) {
  detail::check_device_activation(op, "x", x);
  detail::check_device_activation(op, "y", y);
  detail::check_same_layout(op, "x", x, "y", y);
  detail::check_same_dtype(op, x, y);
  for_rows(x, [&](dim3 grid, int block, int64_t b0) {
    if (x.dtype() == DType::F32)
      map_kernel<float><<<grid, block, 0, stream>>>(view_of<const float>(x), view_of<float>(y), fn, b0);
    else
      map_kernel<bf16><<<grid, block, 0, stream>>>(view_of<const bf16>(x), view_of<bf16>(y), fn, b0);
    check_launch(op);
  });
}

}  // namespace

void gelu_tanh(const Tensor& x, Tensor& y, cudaStream_t stream) { map("gelu_tanh", x, y, GeluTanh{}, stream); }
void gelu(const Tensor& x, Tensor& y, cudaStream_t stream) { map("gelu", x, y, Gelu{}, stream); }
void silu(const Tensor& x, Tensor& y, cudaStream_t stream) { map("silu", x, y, Silu{}, stream); }

void quick_gelu(const Tensor& x, Tensor& y, cudaStream_t stream) { map("quick_gelu", x, y, QuickGelu{}, stream); }

void add(const Tensor& a, const Tensor& b, Tensor& y, cudaStream_t stream) {
  constexpr std::string_view op = "add";
  detail::check_device_activation(op, "a", a);
  detail::check_device_activation(op, "b", b);
  detail::check_device_activation(op, "y", y);
  detail::check_same_layout(op, "a", a, "y", y);
  detail::check_same_dtype(op, a, b);
  detail::check_same_dtype(op, a, y);
  detail::check_add_operands(a, b);
  const bool broadcast = b.batch() == 1;
  for_rows(a, [&](dim3 grid, int block, int64_t b0) {
    if (a.dtype() == DType::F32)
      add_kernel<float><<<grid, block, 0, stream>>>(view_of<const float>(a), view_of<const float>(b), view_of<float>(y),
                                                    broadcast, b0);
    else
      add_kernel<bf16><<<grid, block, 0, stream>>>(view_of<const bf16>(a), view_of<const bf16>(b), view_of<bf16>(y),
                                                   broadcast, b0);
    check_launch(op);
  });
}

void mul(const Tensor& a, const Tensor& b, Tensor& y, cudaStream_t stream) {
  constexpr std::string_view op = "mul";
  detail::check_device_activation(op, "a", a);
  detail::check_device_activation(op, "b", b);
  detail::check_device_activation(op, "y", y);
  detail::check_same_layout(op, "a", a, "y", y);
  detail::check_same_layout(op, "a", a, "b", b);
  detail::check_same_dtype(op, a, b);
  detail::check_same_dtype(op, a, y);
  for_rows(a, [&](dim3 grid, int block, int64_t b0) {
    if (a.dtype() == DType::F32)
      mul_kernel<float><<<grid, block, 0, stream>>>(view_of<const float>(a), view_of<const float>(b), view_of<float>(y), b0);
    else
      mul_kernel<bf16><<<grid, block, 0, stream>>>(view_of<const bf16>(a), view_of<const bf16>(b), view_of<bf16>(y), b0);
  });
  check_launch("mul");
}

void gated_add(Tensor& x, const Tensor& y, const Tensor& mod, int gate_chunk, cudaStream_t stream) {
  constexpr std::string_view op = "gated_add";
  detail::check_device_activation(op, "x", x);
  detail::check_device_activation(op, "y", y);
  detail::check_device_activation(op, "mod", mod);
  detail::check_same_layout(op, "x", x, "y", y);
  detail::check_same_dtype(op, x, y);
  detail::check_same_dtype(op, x, mod);
  detail::check_mod(op, mod, gate_chunk, x.batch(), x.cols());
  const bool broadcast = mod.batch() == 1;
  for_rows(x, [&](dim3 grid, int block, int64_t b0) {
    if (x.dtype() == DType::F32)
      gated_add_kernel<float><<<grid, block, 0, stream>>>(view_of<float>(x), view_of<const float>(y),
                                                          view_of<const float>(mod), gate_chunk, broadcast, b0);
    else
      gated_add_kernel<bf16><<<grid, block, 0, stream>>>(view_of<bf16>(x), view_of<const bf16>(y),
                                                         view_of<const bf16>(mod), gate_chunk, broadcast, b0);
    check_launch(op);
  });
}

void copy(const Tensor& src, Tensor& dst, cudaStream_t stream) {
  constexpr std::string_view op = "copy";
  detail::check_device_activation(op, "src", src);
  detail::check_device_activation(op, "dst", dst);
  detail::check_same_layout(op, "src", src, "dst", dst);
  if (src.dtype() == dst.dtype() && src.contiguous() && dst.contiguous()) {
    if (src.data() != dst.data())
      check_cuda(cudaMemcpyAsync(dst.data(), src.data(), size_t(src.numel()) * dtype_info(src.dtype()).block_bytes,
                                 cudaMemcpyDeviceToDevice, stream),
                 "copy");
    return;
  }
  const bool from_f32 = src.dtype() == DType::F32, to_f32 = dst.dtype() == DType::F32;
  for_rows(src, [&](dim3 grid, int block, int64_t b0) {
    if (from_f32 && to_f32)
      copy_kernel<float, float><<<grid, block, 0, stream>>>(view_of<const float>(src), view_of<float>(dst), b0);
    else if (from_f32)
      copy_kernel<float, bf16><<<grid, block, 0, stream>>>(view_of<const float>(src), view_of<bf16>(dst), b0);
    else if (to_f32)
      copy_kernel<bf16, float><<<grid, block, 0, stream>>>(view_of<const bf16>(src), view_of<float>(dst), b0);
    else
      copy_kernel<bf16, bf16><<<grid, block, 0, stream>>>(view_of<const bf16>(src), view_of<bf16>(dst), b0);
    check_launch(op);
  });
}

void convert_param(const ParamRef& param, void* out, DType out_dtype, cudaStream_t stream) {
  detail::check_param("convert_param", "parameter", param, param.count);
  detail::check_output_dtype("convert_param", out_dtype);
  if (param.count == 0) return;
  const Param p{param.data, detail::param_kind(param.dtype), param.round_bf16};
  const auto g = cuda_plan::grid_stride(param.count, 256, 1024);
  if (out_dtype == DType::F32)
    convert_param_kernel<float><<<unsigned(g.grid_x), g.block, 0, stream>>>(p, static_cast<float*>(out), param.count);
  else
    convert_param_kernel<bf16><<<unsigned(g.grid_x), g.block, 0, stream>>>(p, static_cast<bf16*>(out), param.count);
  check_launch("convert_param");
}

}  // namespace ditrun::kernels::cuda
