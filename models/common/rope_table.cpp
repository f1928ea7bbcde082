#include "models/common/rope_table.h"

#include <cmath>

#include "runtime/core/error.h"

namespace ditrun::models {

std::vector<float> rope_table(std::span<const float> positions, std::span<const int64_t> axes, double theta) {
  int64_t width = 0;
  for (int64_t a : axes) {
    if (a <= 0 || a % 2 != 0) fail("RoPE axis width {} must be even and positive", a);
    width += a;
  }
  const size_t n_axes = axes.size();
  if (n_axes == 0 || positions.size() % n_axes != 0) fail("RoPE positions do not hold {} axes per token", n_axes);
  const size_t tokens = positions.size() / n_axes;
  // Frequencies per pair, axis after axis.
  std::vector<double> omega;
  std::vector<size_t> axis_of_pair;
  for (size_t a = 0; a < n_axes; ++a)
    for (int64_t k = 0; k < axes[a] / 2; ++k) {
      omega.push_back(1.0 / std::pow(theta, double(2 * k) / double(axes[a])));
      axis_of_pair.push_back(a);
    }
  std::vector<float> table(tokens * size_t(width));
  for (size_t t = 0; t < tokens; ++t) {
    float* row = table.data() + t * size_t(width);
    for (size_t p = 0; p < omega.size(); ++p) {
      const double angle = double(positions[t * n_axes + axis_of_pair[p]]) * omega[p];
      row[2 * p] = float(std::cos(angle));
      row[2 * p + 1] = float(std::sin(angle));
    }
  }
  return table;
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
