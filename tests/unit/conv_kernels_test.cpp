// The VAEs' CPU kernels against naive double-precision references written here: convolution
// as the direct sum over taps (2-D, causal 3-D, strided with end padding, a stored-quantized
// weight, views as input, and a volume large enough to take several im2col chunks), group
// norm (with a mean far from zero), nearest upsampling and Wan 2.2's fold shortcuts as
// PyTorch's view/permute defines them.
#include <gtest/gtest.h>

#include <cmath>

#include "host_test_tensors.h"
#include "kernels/cpu/cpu_kernels.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {
namespace {

const CpuContext kCtx{2, false};

Tensor zeros_like_rows(int64_t batch, int64_t rows, int64_t cols) {
  Tensor t = random_tensor({batch, rows, cols}, 99);
  std::fill_n(t.data_as<float>(), t.numel(), 0.0f);
  return t;
}

double worst_relative(const std::vector<double>& want, const Tensor& got) {
  const std::vector<double> g = values(got);
  if (g.size() != want.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - want[i]) / (1.0 + std::abs(want[i])));
  return worst;
}

// The direct sum: y[b, (t,h,w), o] = bias[o] + Σ x[b, (t·st − pt + a, ...), c] · W[o, c, a, i, j].
std::vector<double> reference_conv(const Tensor& x, const Volume& in, const Weight& w, const Weight* bias,
                                   const ConvSpec& s) {
  const Volume out = s.output(in, "reference");
  const std::vector<float> wv = w.dequantize();
  const std::vector<float> bv = bias ? bias->dequantize() : std::vector<float>();
  const int64_t c_in = x.cols(), c_out = w.rows(), kt = s.kernel[0], kh = s.kernel[1], kw = s.kernel[2];
  std::vector<double> y;
  for (int64_t b = 0; b < x.batch(); ++b)
    for (int64_t p = 0; p < out.positions(); ++p)
      for (int64_t o = 0; o < c_out; ++o) {
        const int64_t ow = p % out.w, oh = (p / out.w) % out.h, ot = p / (out.w * out.h);
        double acc = bias ? bv[size_t(o)] : 0.0;
        for (int64_t c = 0; c < c_in; ++c)
          for (int64_t a = 0; a < kt; ++a)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t t = ot * s.stride[0] - s.pad_before[0] + a, h = oh * s.stride[1] - s.pad_before[1] + i,
                              ww = ow * s.stride[2] - s.pad_before[2] + j;
                if (t < 0 || t >= in.t || h < 0 || h >= in.h || ww < 0 || ww >= in.w) continue;
                acc += double(x.row<const float>(b, (t * in.h + h) * in.w + ww)[c]) *
                       wv[size_t((((o * c_in + c) * kt + a) * kh + i) * kw + j)];
              }
        y.push_back(acc);
      }
  return y;
}

struct ConvCase {
  const char* what;
  Volume in;
  int64_t batch, c_in, c_out;
  ConvSpec spec;
  DType storage;
  bool four_d_weight;  // [C_out, C_in, kh, kw] as Conv2d stores it
};

TEST(Conv3d, MatchesTheDirectSum) {
  ConvSpec time_down;
  time_down.kernel = {3, 1, 1};
  time_down.stride = {2, 1, 1};
  const ConvCase cases[] = {
      {"3x3 image, bf16 weight", {1, 7, 5}, 2, 6, 4, ConvSpec::spatial(3), DType::BF16, true},
      {"causal 3x3x3", {4, 5, 3}, 1, 5, 7, ConvSpec::causal(3, 3), DType::F32, false},
      {"stride-2 downsampler", {2, 8, 6}, 1, 4, 4, ConvSpec::downsample2x(), DType::F16, true},
      {"time downsampler", {5, 2, 2}, 2, 3, 3, time_down, DType::F32, false},
      {"q8_0 weight", {1, 4, 4}, 1, 32, 8, ConvSpec::spatial(3), DType::Q8_0, true},
      {"pointwise", {2, 3, 3}, 1, 6, 5, ConvSpec{}, DType::BF16, false},
  };
  for (const ConvCase& c : cases) {
    const Shape wshape = c.four_d_weight ? Shape{c.c_out, c.c_in, c.spec.kernel[1], c.spec.kernel[2]}
                                         : Shape{c.c_out, c.c_in, c.spec.kernel[0], c.spec.kernel[1], c.spec.kernel[2]};
    TestWeight w("w", wshape, c.storage, 3);
    TestWeight bias("b", {c.c_out}, DType::F32, 4);
    // The input as a column view of a wider buffer.
    const Tensor wide = random_tensor({c.batch, c.in.positions(), c.c_in + 3}, 5);
    const Tensor x = wide.slice_cols(2, c.c_in);
    const Volume out = c.spec.output(c.in, c.what);
    Tensor y = zeros_like_rows(c.batch, out.positions(), c.c_out);
    conv3d(kCtx, x, c.in, w.w, &bias.w, c.spec, y);
    EXPECT_LT(worst_relative(reference_conv(x, c.in, w.w, &bias.w, c.spec), y), 1e-5) << c.what;
  }
}

TEST(Conv3d, SeveralChunksOfPositions) {
  // K = 256·27 puts ~1200 positions in a 32 MiB chunk: 1800 positions take two.
  const Volume in{2, 30, 30};
  TestWeight w("w", {3, 256, 3, 3, 3}, DType::BF16, 6, 0.05f);
  const Tensor x = random_tensor({1, in.positions(), 256}, 7);
  Tensor y = zeros_like_rows(1, in.positions(), 3);
  conv3d(kCtx, x, in, w.w, nullptr, ConvSpec::causal(3, 3), y);
  EXPECT_LT(worst_relative(reference_conv(x, in, w.w, nullptr, ConvSpec::causal(3, 3)), y), 1e-5);
}

TEST(Conv3d, RefusesMismatchedShapes) {
  TestWeight w("w", {4, 6, 3, 3}, DType::F32, 8);
  const Tensor x = random_tensor({1, 20, 6}, 9);
  Tensor wrong_rows = zeros_like_rows(1, 19, 4), wrong_cols = zeros_like_rows(1, 20, 5);
  EXPECT_THROW(conv3d(kCtx, x, {1, 4, 5}, w.w, nullptr, ConvSpec::spatial(3), wrong_rows), Error);
  EXPECT_THROW(conv3d(kCtx, x, {1, 4, 5}, w.w, nullptr, ConvSpec::spatial(3), wrong_cols), Error);
  Tensor y = zeros_like_rows(1, 20, 4);
  EXPECT_THROW(conv3d(kCtx, x, {1, 4, 5}, w.w, nullptr, ConvSpec::causal(3, 3), y), Error);  // kernel is 2-D
  EXPECT_THROW(conv3d(kCtx, x, {1, 5, 5}, w.w, nullptr, ConvSpec::spatial(3), y), Error);     // 25 positions
}

TEST(GroupNorm, MatchesTheDefinitionWithALargeMean) {
  const int64_t groups = 4, c = 16, rows = 37;
  Tensor x = random_tensor({2, rows, c}, 10, 0.1f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data_as<float>()[i] += 20.0f;
  TestWeight gamma("g", {c}, DType::BF16, 11), beta("b", {c}, DType::F32, 12);
  Tensor y = zeros_like_rows(2, rows, c);
  group_norm(kCtx, x, y, groups, 1e-6f, gamma.w, beta.w);
  const auto g = gamma.w.dequantize(), be = beta.w.dequantize();
  std::vector<double> want;
  for (int64_t b = 0; b < 2; ++b) {
    std::vector<double> mean(groups, 0), var(groups, 0);
    const double n = double(rows * c / groups);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < c; ++j) mean[size_t(j / (c / groups))] += x.row<const float>(b, r)[j] / n;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < c; ++j) {
        const double d = x.row<const float>(b, r)[j] - mean[size_t(j / (c / groups))];
        var[size_t(j / (c / groups))] += d * d / n;
      }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < c; ++j) {
        const size_t gi = size_t(j / (c / groups));
        want.push_back((x.row<const float>(b, r)[j] - mean[gi]) / std::sqrt(var[gi] + 1e-6) * g[size_t(j)] +
                       be[size_t(j)]);
      }
  }
  EXPECT_LT(worst_relative(want, y), 2e-5);
  Tensor bad = zeros_like_rows(2, rows, c);
  EXPECT_THROW(group_norm(kCtx, x, bad, 5, 1e-6f, gamma.w, beta.w), Error);
}

TEST(Upsample2x, DuplicatesEachPosition) {
  const Volume in{2, 3, 4};
  const Tensor x = random_tensor({2, in.positions(), 5}, 13);
  Tensor y = zeros_like_rows(2, in.t * in.h * 2 * in.w * 2, 5);
  upsample2x(kCtx, x, in, y);
  std::vector<double> want;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < in.t; ++t)
      for (int64_t h = 0; h < 2 * in.h; ++h)
        for (int64_t w = 0; w < 2 * in.w; ++w)
          for (int64_t c = 0; c < 5; ++c) want.push_back(x.row<const float>(b, (t * in.h + h / 2) * in.w + w / 2)[c]);
  EXPECT_EQ(worst_relative(want, y), 0.0);
}

// AvgDown3D as PyTorch computes it: pad frames in front, view [C, T/ft, ft, H/fs, fs, W/fs, fs],
// permute the factors next to C, flatten to C·F channels, mean over groups of C·F/C_out.
TEST(WanFoldShortcuts, AvgDownAsViewPermuteMean) {
  for (const auto& [in, ft, fs, c_in, c_out] : {std::tuple{Volume{5, 4, 6}, 2, 2, 3, 6}, std::tuple{Volume{3, 2, 2}, 1, 2, 4, 8},
                                                 std::tuple{Volume{2, 2, 2}, 1, 1, 4, 4}}) {
    const Tensor x = random_tensor({1, in.positions(), c_in}, 14);
    const Volume out = avg_down_volume(in, ft, fs);
    Tensor y = zeros_like_rows(1, out.positions(), c_out);
    avg_down3d(kCtx, x, in, ft, fs, y);
    const int64_t pad = (ft - in.t % ft) % ft, f = ft * fs * fs, group = c_in * f / c_out;
    std::vector<double> folded(size_t(out.positions() * c_in * f), 0.0);
    for (int64_t t = 0; t < in.t + pad; ++t)
      for (int64_t h = 0; h < in.h; ++h)
        for (int64_t w = 0; w < in.w; ++w)
          for (int64_t c = 0; c < c_in; ++c) {
            const double v = t < pad ? 0.0 : x.row<const float>(0, ((t - pad) * in.h + h) * in.w + w)[c];
            const int64_t p = ((t / ft) * out.h + h / fs) * out.w + w / fs;
            const int64_t channel = ((c * ft + t % ft) * fs + h % fs) * fs + w % fs;
            folded[size_t(p * c_in * f + channel)] = v;
          }
    std::vector<double> want;
    for (int64_t p = 0; p < out.positions(); ++p)
      for (int64_t o = 0; o < c_out; ++o) {
        double s = 0;
        for (int64_t j = 0; j < group; ++j) s += folded[size_t(p * c_in * f + o * group + j)];
        want.push_back(s / double(group));
      }
    EXPECT_LT(worst_relative(want, y), 1e-6) << in.str() << " by " << ft << "x" << fs;
  }
}

// DupUp3D as PyTorch computes it: repeat_interleave channels, view [C_out, ft, fs, fs, T, H, W],
// permute to [C_out, T, ft, H, fs, W, fs], drop the first frames.
TEST(WanFoldShortcuts, DupUpAsRepeatViewPermute) {
  for (const auto& [in, ft, fs, c_in, c_out, drop] :
       {std::tuple{Volume{3, 2, 3}, 2, 2, 8, 4, 1}, std::tuple{Volume{2, 2, 2}, 1, 2, 4, 4, 0}}) {
    const Tensor x = random_tensor({1, in.positions(), c_in}, 15);
    const Volume out = dup_up_volume(in, ft, fs, drop);
    Tensor y = zeros_like_rows(1, out.positions(), c_out);
    dup_up3d(kCtx, x, in, ft, fs, drop, y);
    const int64_t f = ft * fs * fs, repeats = c_out * f / c_in;
    std::vector<double> full(size_t((in.t * ft) * out.h * out.w * c_out));
    for (int64_t t = 0; t < in.t; ++t)
      for (int64_t h = 0; h < in.h; ++h)
        for (int64_t w = 0; w < in.w; ++w)
          for (int64_t j = 0; j < c_out * f; ++j) {
            const int64_t o = j / f, a = (j / (fs * fs)) % ft, b = (j / fs) % fs, d = j % fs;
            const int64_t p = ((t * ft + a) * out.h + h * fs + b) * out.w + w * fs + d;
            full[size_t(p * c_out + o)] = x.row<const float>(0, (t * in.h + h) * in.w + w)[j / repeats];
          }
    const std::vector<double> want(full.begin() + drop * out.h * out.w * c_out, full.end());
    EXPECT_EQ(worst_relative(want, y), 0.0) << in.str();
  }
}

}  // namespace
}  // namespace ditrun::kernels::cpu
