#include "runtime/core/volume.h"

#include <fmt/format.h>

#include "runtime/core/error.h"
#include "runtime/core/tensor.h"

namespace ditrun {

std::string Volume::str() const { return fmt::format("{}x{}x{}", t, h, w); }

Volume ConvSpec::output(const Volume& in, const std::string& op) const {
  const std::array<int64_t, 3> size{in.t, in.h, in.w};
  std::array<int64_t, 3> out{};
  for (int a = 0; a < 3; ++a) {
    if (kernel[a] < 1 || stride[a] < 1 || pad_before[a] < 0 || pad_after[a] < 0)
      fail("{}: invalid convolution {}", op, str());
    const int64_t padded = size[a] + pad_before[a] + pad_after[a];
    if (size[a] < 1 || padded < kernel[a])
      fail("{}: input volume {} is too small for the convolution {}", op, in.str(), str());
    out[a] = (padded - kernel[a]) / stride[a] + 1;
  }
  return {out[0], out[1], out[2]};
}

bool ConvSpec::pointwise() const {
  return taps() == 1 && stride == std::array<int64_t, 3>{1, 1, 1} && pad_before == std::array<int64_t, 3>{0, 0, 0} &&
         pad_after == std::array<int64_t, 3>{0, 0, 0};
}

std::string ConvSpec::str() const {
  return fmt::format("kernel {}x{}x{} stride {}x{}x{} pad {}+{},{}+{},{}+{}", kernel[0], kernel[1], kernel[2], stride[0],
                     stride[1], stride[2], pad_before[0], pad_after[0], pad_before[1], pad_after[1], pad_before[2],
                     pad_after[2]);
}

ConvSpec ConvSpec::spatial(int64_t k) {
  ConvSpec s;
  s.kernel = {1, k, k};
  s.pad_before = {0, k / 2, k / 2};
  s.pad_after = {0, k / 2, k / 2};
  return s;
}

ConvSpec ConvSpec::causal(int64_t kt, int64_t k) {
  ConvSpec s = spatial(k);
  s.kernel[0] = kt;
  s.pad_before[0] = kt - 1;
  return s;
}

ConvSpec ConvSpec::downsample2x() {
  ConvSpec s;
  s.kernel = {1, 3, 3};
  s.stride = {1, 2, 2};
  s.pad_after = {0, 1, 1};
  return s;
}

int64_t avg_down_front_pad(const Volume& in, int64_t ft) { return ft > 0 ? (ft - in.t % ft) % ft : 0; }

Volume avg_down_volume(const Volume& in, int64_t ft, int64_t fs) {
  if (ft < 1 || fs < 1 || in.t < 1 || in.h % fs != 0 || in.w % fs != 0)
    fail("avg_down3d: volume {} does not fold by {}x{}x{}", in.str(), ft, fs, fs);
  return {(in.t + avg_down_front_pad(in, ft)) / ft, in.h / fs, in.w / fs};
}

Volume dup_up_volume(const Volume& in, int64_t ft, int64_t fs, int64_t drop_front) {
  if (ft < 1 || fs < 1 || drop_front < 0 || drop_front >= in.t * ft)
    fail("dup_up3d: cannot unfold volume {} by {}x{}x{} dropping {} frames", in.str(), ft, fs, fs, drop_front);
  return {in.t * ft - drop_front, in.h * fs, in.w * fs};
}

void check_volume_rows(std::string_view op, const Tensor& x, const Volume& in, const Tensor& y, const Volume& out) {
  if (x.rows() != in.positions() || y.rows() != out.positions() || x.batch() != y.batch())
    fail("{}: x {} over volume {} gives {} positions, y is {}", op, x.describe(), in.str(), out.str(), y.describe());
}

}  // namespace ditrun
