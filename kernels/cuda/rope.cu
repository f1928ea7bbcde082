// rope: rotary embedding in place. One block per token row; each thread rotates pairs
// (x[2p], x[2p+1]) of some head by the token's (cos, sin) = table[2p], table[2p+1], shared by
// all heads (Flux's apply_rope layout).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/kernel_checks.h"
#include "kernels/cuda_plan/launch_geometry.h"

namespace ditrun::kernels::cuda {
namespace {

template <class T>
__global__ void rope_kernel(View<T> x, View<const T> table, int64_t head_dim, bool table_broadcast, int64_t batch0) {
  const int64_t r = blockIdx.x, b = batch0 + blockIdx.y;
  T* row = x.row(b, r);
  const T* t = table.row(table_broadcast ? 0 : b, r);
  const int64_t pairs = x.cols / 2, half = head_dim / 2;
  for (int64_t q = threadIdx.x; q < pairs; q += blockDim.x) {
    const int64_t p = q % half, j = 2 * q;
    const float cs = load_f32(t + 2 * p), sn = load_f32(t + 2 * p + 1);
    const float x0 = load_f32(row + j), x1 = load_f32(row + j + 1);
    store_f32(row + j, cs * x0 - sn * x1);
    store_f32(row + j + 1, sn * x0 + cs * x1);
  }
}

}  // namespace

void rope(Tensor& x, const Tensor& table, int64_t heads, cudaStream_t stream) {
  constexpr std::string_view op = "rope";
  detail::check_device_activation(op, "x", x);
  detail::check_device_activation(op, "table", table);
  detail::check_same_dtype(op, x, table);
  detail::check_rope(x, table, heads);
  const int64_t c = x.cols(), d = c / heads;
  if (c == 0 || x.rows() == 0 || x.batch() == 0) return;
  const auto launch = cuda_plan::per_row(x.batch(), x.rows(), c / 2, 1, 512);
  for (int64_t b0 = 0; b0 < x.batch(); b0 += launch.grid_y) {
    const dim3 grid(unsigned(launch.grid_x), unsigned(std::min(launch.grid_y, x.batch() - b0)));
    if (x.dtype() == DType::F32)
      rope_kernel<float><<<grid, launch.block, 0, stream>>>(view_of<float>(x), view_of<const float>(table), d,
                                                            table.batch() == 1, b0);
    else
      rope_kernel<bf16><<<grid, launch.block, 0, stream>>>(view_of<bf16>(x), view_of<const bf16>(table), d,
                                                           table.batch() == 1, b0);
    check_launch(op);
  }
}

}  // namespace ditrun::kernels::cuda
