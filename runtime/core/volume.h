// Geometry of the convolutional models (the VAEs): an activation [B, T·H·W, C] is a volume of
// T frames of H×W positions, channels last, so that a convolution is a GEMM over gathered
// patches (im2col) with the weight as stored, [C_out, C_in, kt, kh, kw], and every other op
// of the Backend (norms, activations, attention over positions) applies unchanged.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ditrun {

struct Volume {
  int64_t t = 1, h = 1, w = 1;
  int64_t positions() const { return t * h * w; }
  std::string str() const;  // "5x32x24"
  bool operator==(const Volume&) const = default;
};

// A 3-D convolution over a Volume (a 2-D one has kt = 1 and no time padding). Padding is
// zeros, given before and after each axis separately: Wan's causal convs pad time only in
// front (2·p frames) and the stride-2 downsamplers pad one zero row and column at the end.
struct ConvSpec {
  std::array<int64_t, 3> kernel{1, 1, 1};  // t, h, w
  std::array<int64_t, 3> stride{1, 1, 1};
  std::array<int64_t, 3> pad_before{0, 0, 0};
  std::array<int64_t, 3> pad_after{0, 0, 0};

  int64_t taps() const { return kernel[0] * kernel[1] * kernel[2]; }
  // The output volume; fails (ditrun::Error naming `op`) when an axis would be empty.
  Volume output(const Volume& in, const std::string& op) const;
  bool pointwise() const;  // 1x1x1, stride 1, no padding: a plain linear over positions
  std::string str() const;

  // A k×k spatial conv with padding k/2 on every side (Flux's 3x3 convs).
  static ConvSpec spatial(int64_t k);
  // Wan's CausalConv3d with kernel (kt, k, k): kt-1 zero frames in front, k/2 spatially.
  static ConvSpec causal(int64_t kt, int64_t k);
  // The stride-2 3x3 downsampler of Flux and Wan: one zero row and column at the end.
  static ConvSpec downsample2x();
};

// The output volumes of Wan 2.2's fold shortcuts (avg_down3d, dup_up3d in backend.h); each
// fails (ditrun::Error) when the volume does not fold or unfold by ft×fs×fs.
Volume avg_down_volume(const Volume& in, int64_t ft, int64_t fs);
int64_t avg_down_front_pad(const Volume& in, int64_t ft);  // zero frames put in front
Volume dup_up_volume(const Volume& in, int64_t ft, int64_t fs, int64_t drop_front);

// Fails naming `op` unless x holds the positions of `in` and y those of `out`, batch alike.
class Tensor;
void check_volume_rows(std::string_view op, const Tensor& x, const Volume& in, const Tensor& y, const Volume& out);

}  // namespace ditrun
