#include "models/common/rope_table.h"

#include <cmath>
#include <type_traits>

#include "runtime/core/error.h"

namespace ditrun::models {

namespace {

// Angle arithmetic: double (BFL, Wan) or f32 (diffusers' Qwen-Image).
template <class Real>
std::vector<float> table_of(std::span<const float> positions, std::span<const int64_t> axes, double theta) {
  int64_t width = 0;
  for (int64_t a : axes) {
    if (a <= 0 || a % 2 != 0) fail("RoPE axis width {} must be even and positive", a);
    width += a;
  }
  const size_t n_axes = axes.size();
  if (n_axes == 0 || positions.size() % n_axes != 0) fail("RoPE positions do not hold {} axes per token", n_axes);
  const size_t tokens = positions.size() / n_axes;
  // Frequencies per pair, axis after axis.
  std::vector<Real> omega;
  std::vector<size_t> axis_of_pair;
  for (size_t a = 0; a < n_axes; ++a)
    for (int64_t k = 0; k < axes[a] / 2; ++k) {
      if constexpr (std::is_same_v<Real, float>)  // torch: 1.0 / pow(θ, f32(2k) / f32(d)), each in f32
        omega.push_back(1.0f / float(std::pow(theta, double(float(2 * k) / float(axes[a])))));
      else
        omega.push_back(1.0 / std::pow(theta, double(2 * k) / double(axes[a])));
      axis_of_pair.push_back(a);
    }
  std::vector<float> table(tokens * size_t(width));
  for (size_t t = 0; t < tokens; ++t) {
    float* row = table.data() + t * size_t(width);
    for (size_t p = 0; p < omega.size(); ++p) {
      const double angle = double(Real(positions[t * n_axes + axis_of_pair[p]]) * omega[p]);
      row[2 * p] = float(std::cos(angle));
      row[2 * p + 1] = float(std::sin(angle));
    }
  }
  return table;
}

}  // namespace

std::vector<float> rope_table(std::span<const float> positions, std::span<const int64_t> axes, double theta) {
  return table_of<double>(positions, axes, theta);
}

std::vector<float> rope_table_f32(std::span<const float> positions, std::span<const int64_t> axes, double theta) {
  return table_of<float>(positions, axes, theta);
}

std::vector<float> grid_positions(int64_t frames, int64_t rows, int64_t cols) {
  std::vector<float> pos;
  pos.reserve(size_t(frames * rows * cols * 3));
  for (int64_t f = 0; f < frames; ++f)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        pos.push_back(float(f));
        pos.push_back(float(r));
        pos.push_back(float(c));
      }
  return pos;
}

}  // namespace ditrun::models
