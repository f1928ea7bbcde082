// The resampling ops of the VAEs: pure data movement (and, for avg_down3d, averages), row by
// output row, each output row independent.
#include <fmt/format.h>

#include <cstring>

#include "kernels/cpu/cpu_common.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {
void upsample2x(const CpuContext& ctx, const Tensor& x, const Volume& in, Tensor& y) {
  constexpr std::string_view op = "upsample2x";
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "y", y);
  const Volume out{in.t, in.h * 2, in.w * 2};
  check_volume_rows(op, x, in, y, out);
  if (x.cols() != y.cols()) fail("{}: x {} and y {} differ in channels", op, x.describe(), y.describe());
  const int64_t c = x.cols();
  detail::parallel_rows(ctx, x.batch(), out.positions(), c, [&](int64_t b, int64_t r) {
    const int64_t w = r % out.w, h = (r / out.w) % out.h, t = r / (out.w * out.h);
    std::memcpy(y.row<float>(b, r), x.row<const float>(b, (t * in.h + h / 2) * in.w + w / 2), size_t(c) * sizeof(float));
  });
}

void avg_down3d(const CpuContext& ctx, const Tensor& x, const Volume& in, int64_t ft, int64_t fs, Tensor& y) {
  constexpr std::string_view op = "avg_down3d";
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "y", y);
  const Volume out = avg_down_volume(in, ft, fs);
  const int64_t pad = avg_down_front_pad(in, ft);
  check_volume_rows(op, x, in, y, out);
  const int64_t c_in = x.cols(), c_out = y.cols(), f = ft * fs * fs;
  if (c_out < 1 || (c_in * f) % c_out != 0)
    fail("{}: {} channels x {} do not average into {}", op, c_in, f, c_out);
  const int64_t group = c_in * f / c_out;
  detail::parallel_rows(ctx, x.batch(), out.positions(), c_in * f, [&](int64_t b, int64_t r) {
    const int64_t ow = r % out.w, oh = (r / out.w) % out.h, ot = r / (out.w * out.h);
    float* dst = y.row<float>(b, r);
    for (int64_t o = 0; o < c_out; ++o) {
      float acc = 0.0f;
      for (int64_t j = o * group; j < (o + 1) * group; ++j) {
        const int64_t c = j / f, a = (j % f) / (fs * fs), bb = (j % (fs * fs)) / fs, d = j % fs;
        const int64_t t = ot * ft + a - pad;
        if (t >= 0) acc += x.row<const float>(b, (t * in.h + oh * fs + bb) * in.w + ow * fs + d)[c];
      }
      dst[o] = acc / float(group);
    }
    if (ctx.round_bf16) detail::round_bf16(dst, c_out);
  });
}

void dup_up3d(const CpuContext& ctx, const Tensor& x, const Volume& in, int64_t ft, int64_t fs, int64_t drop_front,
              Tensor& y) {
  constexpr std::string_view op = "dup_up3d";
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "y", y);
  const Volume out = dup_up_volume(in, ft, fs, drop_front);
  check_volume_rows(op, x, in, y, out);
  const int64_t c_in = x.cols(), c_out = y.cols(), f = ft * fs * fs;
  if (c_out < 1 || (c_out * f) % c_in != 0) fail("{}: {} channels do not repeat into {} x {}", op, c_in, c_out, f);
  const int64_t repeats = c_out * f / c_in;
  detail::parallel_rows(ctx, x.batch(), out.positions(), c_out, [&](int64_t b, int64_t r) {
    const int64_t w = r % out.w, h = (r / out.w) % out.h, t = r / (out.w * out.h) + drop_front;
    const int64_t unfold = (t % ft) * fs * fs + (h % fs) * fs + w % fs;
    const float* src = x.row<const float>(b, ((t / ft) * in.h + h / fs) * in.w + w / fs);
    float* dst = y.row<float>(b, r);
    for (int64_t o = 0; o < c_out; ++o) dst[o] = src[(o * f + unfold) / repeats];
  });
}

}  // namespace ditrun::kernels::cpu
