// The VAEs' convolutional ops on the GPU: gather and resampling kernels with one thread per
// output element (consecutive threads, consecutive channels), and group norm as a statistics
// pass (blocks over row chunks, atomics into double sums) followed by a row-wise apply.
#include <algorithm>

#include "kernels/cuda/conv_ops.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/kernel_checks.h"

namespace ditrun::kernels::cuda {
namespace {

struct Geometry {
  int64_t t, h, w;
};
struct Spec {
  int64_t k[3], s[3], p[3];
};

Geometry geometry(const Volume& v) { return {v.t, v.h, v.w}; }
Spec spec_of(const ConvSpec& c) {
  return {{c.kernel[0], c.kernel[1], c.kernel[2]},
          {c.stride[0], c.stride[1], c.stride[2]},
          {c.pad_before[0], c.pad_before[1], c.pad_before[2]}};
}

unsigned blocks_for(int64_t n, int threads) { return unsigned(std::min<int64_t>((n + threads - 1) / threads, 1 << 20)); }

template <class T>
__global__ void im2col_kernel(View<const T> x, int64_t b, Geometry in, Geometry out, Spec s, int64_t c_in,
                              int64_t p0, int64_t n, T* patches) {
  const int64_t taps = s.k[0] * s.k[1] * s.k[2], k = c_in * taps, total = n * k;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    // i = (row, tap, c): consecutive threads read consecutive channels of one input row.
    const int64_t c = i % c_in, tap = (i / c_in) % taps, row = i / k, p = p0 + row;
    const int64_t ow = p % out.w, oh = (p / out.w) % out.h, ot = p / (out.w * out.h);
    const int64_t d = tap % s.k[2], bb = (tap / s.k[2]) % s.k[1], a = tap / (s.k[2] * s.k[1]);
    const int64_t t = ot * s.s[0] - s.p[0] + a, h = oh * s.s[1] - s.p[1] + bb, w = ow * s.s[2] - s.p[2] + d;
    const bool inside = t >= 0 && t < in.t && h >= 0 && h < in.h && w >= 0 && w < in.w;
    patches[row * k + c * taps + tap] = inside ? x.row(b, (t * in.h + h) * in.w + w)[c] : T(0.0f);
  }
}

template <class T>
__global__ void group_stats_kernel(View<const T> x, int64_t groups, int64_t rows_per_block, double* stats) {
  __shared__ double scratch[32];
  const int64_t b = blockIdx.y, r0 = blockIdx.x * rows_per_block, r1 = min(x.rows, r0 + rows_per_block);
  const int64_t per_group = x.cols / groups;
  for (int64_t g = 0; g < groups; ++g) {
    double s = 0, s2 = 0;
    for (int64_t i = threadIdx.x; i < (r1 - r0) * per_group; i += blockDim.x) {
      const double v = load_f32(x.row(b, r0 + i / per_group) + g * per_group + i % per_group);
      s += v;
      s2 += v * v;
    }
    s = block_sum(s, scratch);
    s2 = block_sum(s2, scratch);
    if (threadIdx.x == 0) {
      atomicAdd(stats + 2 * (b * groups + g), s);
      atomicAdd(stats + 2 * (b * groups + g) + 1, s2);
    }
  }
}

template <class T>
__global__ void group_apply_kernel(View<const T> x, View<T> y, int64_t groups, float eps, Param gamma, Param beta,
                                   const double* stats) {
  const int64_t r = blockIdx.x, b = blockIdx.y, per_group = x.cols / groups;
  const double count = double(x.rows) * double(per_group);
  const T* in = x.row(b, r);
  T* out = y.row(b, r);
  for (int64_t j = threadIdx.x; j < x.cols; j += blockDim.x) {
    const int64_t g = j / per_group;
    const double mean = stats[2 * (b * groups + g)] / count;
    const double var = fmax(0.0, stats[2 * (b * groups + g) + 1] / count - mean * mean);
    const double rstd = 1.0 / sqrt(var + double(eps));
    const float scale = float(rstd * gamma[j]);
    const float shift = float(double(beta[j]) - mean * rstd * gamma[j]);
    store_f32(out + j, load_f32(in + j) * scale + shift);
  }
}

template <class T>
__global__ void upsample2x_kernel(View<const T> x, View<T> y, Geometry in, int64_t batch) {
  const int64_t c = x.cols, out_w = in.w * 2, out_h = in.h * 2, total = batch * y.rows * c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = i % c, r = (i / c) % y.rows, b = i / (c * y.rows);
    const int64_t w = r % out_w, h = (r / out_w) % out_h, t = r / (out_w * out_h);
    y.row(b, r)[j] = x.row(b, (t * in.h + h / 2) * in.w + w / 2)[j];
  }
}

template <class T>
__global__ void avg_down_kernel(View<const T> x, View<T> y, Geometry in, Geometry out, int64_t ft, int64_t fs,
                                int64_t pad, int64_t batch) {
  const int64_t c_out = y.cols, f = ft * fs * fs, group = x.cols * f / c_out, total = batch * y.rows * c_out;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = i % c_out, r = (i / c_out) % y.rows, b = i / (c_out * y.rows);
    const int64_t ow = r % out.w, oh = (r / out.w) % out.h, ot = r / (out.w * out.h);
    float acc = 0.0f;  // the CPU twin's order: j ascending
    for (int64_t j = o * group; j < (o + 1) * group; ++j) {
      const int64_t c = j / f, a = (j % f) / (fs * fs), bb = (j % (fs * fs)) / fs, d = j % fs;
      const int64_t t = ot * ft + a - pad;
      if (t >= 0) acc += load_f32(x.row(b, (t * in.h + oh * fs + bb) * in.w + ow * fs + d) + c);
    }
    store_f32(y.row(b, r) + o, acc / float(group));
  }
}

template <class T>
__global__ void dup_up_kernel(View<const T> x, View<T> y, Geometry in, Geometry out, int64_t ft, int64_t fs,
                              int64_t drop, int64_t batch) {
  const int64_t c_out = y.cols, f = ft * fs * fs, repeats = c_out * f / x.cols, total = batch * y.rows * c_out;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = i % c_out, r = (i / c_out) % y.rows, b = i / (c_out * y.rows);
    const int64_t w = r % out.w, h = (r / out.w) % out.h, t = r / (out.w * out.h) + drop;
    const int64_t unfold = (t % ft) * fs * fs + (h % fs) * fs + w % fs;
    y.row(b, r)[o] = x.row(b, ((t / ft) * in.h + h / fs) * in.w + w / fs)[(o * f + unfold) / repeats];
  }
}

Param param_of(const ParamRef& p) { return Param{p.data, detail::param_kind(p.dtype), p.round_bf16}; }

template <class Fn>
void dispatch(const Tensor& t, Fn&& fn) {
  if (t.dtype() == DType::F32) fn(float{});
  else fn(bf16{});
}

}  // namespace

int64_t conv_chunk_positions(int64_t k, int64_t positions) {
  const int64_t by_memory = (int64_t(32) << 20) / (k * 4);
  return std::clamp<int64_t>(by_memory, 64, std::max<int64_t>(positions, 1));
}

void im2col3d(const Tensor& x, int64_t b, const Volume& in, const ConvSpec& spec, int64_t p0, Tensor& patches,
              cudaStream_t stream) {
  detail::check_device_activation("conv3d", "x", x);
  detail::check_device_activation("conv3d", "patches", patches);
  detail::check_same_dtype("conv3d", x, patches);
  const Volume out = spec.output(in, "conv3d");
  const int64_t n = patches.rows(), k = x.cols() * spec.taps();
  if (!patches.contiguous() || patches.cols() != k || p0 < 0 || p0 + n > out.positions() || b < 0 || b >= x.batch())
    detail::fail_conv_patches(x, patches, p0, k);
  if (n == 0) return;
  dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    im2col_kernel<T><<<blocks_for(n * k, 256), 256, 0, stream>>>(view_of<const T>(x), b, geometry(in), geometry(out),
                                                                  spec_of(spec), x.cols(), p0, n,
                                                                  static_cast<T*>(patches.data()));
  });
  check_launch("im2col3d");
}

void group_norm(const Tensor& x, Tensor& y, int64_t groups, float eps, const ParamRef& gamma, const ParamRef& beta,
                double* stats, cudaStream_t stream) {
  constexpr std::string_view op = "group_norm";
  detail::check_device_activation(op, "x", x);
  detail::check_device_activation(op, "y", y);
  detail::check_same_layout(op, "x", x, "y", y);
  detail::check_same_dtype(op, x, y);
  detail::check_group_count(x, groups);
  detail::check_param(op, "gamma", gamma, x.cols());
  detail::check_param(op, "beta", beta, x.cols());
  if (x.numel() == 0) return;
  check_cuda(cudaMemsetAsync(stats, 0, size_t(2 * x.batch() * groups) * sizeof(double), stream), "group_norm stats");
  const int64_t rows_per_block = std::max<int64_t>(1, 8192 / x.cols());
  const dim3 grid(unsigned((x.rows() + rows_per_block - 1) / rows_per_block), unsigned(x.batch()));
  dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    group_stats_kernel<T><<<grid, 256, 0, stream>>>(view_of<const T>(x), groups, rows_per_block, stats);
    group_apply_kernel<T><<<dim3(unsigned(x.rows()), unsigned(x.batch())), 256, 0, stream>>>(
        view_of<const T>(x), view_of<T>(y), groups, eps, param_of(gamma), param_of(beta), stats);
  });
  check_launch("group_norm");
}

void upsample2x(const Tensor& x, const Volume& in, Tensor& y, cudaStream_t stream) {
  detail::check_device_activation("upsample2x", "x", x);
  detail::check_device_activation("upsample2x", "y", y);
  detail::check_same_dtype("upsample2x", x, y);
  check_volume_rows("upsample2x", x, in, y, {in.t, in.h * 2, in.w * 2});
  detail::check_same_channels("upsample2x", x, y);
  const int64_t total = y.numel();
  if (total == 0) return;
  dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    upsample2x_kernel<T><<<blocks_for(total, 256), 256, 0, stream>>>(view_of<const T>(x), view_of<T>(y),
                                                                      geometry(in), x.batch());
  });
  check_launch("upsample2x");
}

void avg_down3d(const Tensor& x, const Volume& in, int64_t ft, int64_t fs, Tensor& y, cudaStream_t stream) {
  detail::check_device_activation("avg_down3d", "x", x);
  detail::check_device_activation("avg_down3d", "y", y);
  detail::check_same_dtype("avg_down3d", x, y);
  const Volume out = avg_down_volume(in, ft, fs);
  check_volume_rows("avg_down3d", x, in, y, out);
  detail::check_channel_ratio("avg_down3d", x.cols() * ft * fs * fs, y.cols());
  const int64_t total = y.numel();
  if (total == 0) return;
  dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    avg_down_kernel<T><<<blocks_for(total, 256), 256, 0, stream>>>(
        view_of<const T>(x), view_of<T>(y), geometry(in), geometry(out), ft, fs, (ft - in.t % ft) % ft, x.batch());
  });
  check_launch("avg_down3d");
}

void dup_up3d(const Tensor& x, const Volume& in, int64_t ft, int64_t fs, int64_t drop_front, Tensor& y,
              cudaStream_t stream) {
  detail::check_device_activation("dup_up3d", "x", x);
  detail::check_device_activation("dup_up3d", "y", y);
  detail::check_same_dtype("dup_up3d", x, y);
  const Volume out = dup_up_volume(in, ft, fs, drop_front);
  check_volume_rows("dup_up3d", x, in, y, out);
  detail::check_channel_ratio("dup_up3d", y.cols() * ft * fs * fs, x.cols());
  const int64_t total = y.numel();
  if (total == 0) return;
  dispatch(x, [&](auto tag) {
    using T = decltype(tag);
    dup_up_kernel<T><<<blocks_for(total, 256), 256, 0, stream>>>(view_of<const T>(x), view_of<T>(y), geometry(in),
                                                                  geometry(out), ft, fs, drop_front, x.batch());
  });
  check_launch("dup_up3d");
}

}  // namespace ditrun::kernels::cuda
