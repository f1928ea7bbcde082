#include "models/common/timestep_embedding.h"

#include <cmath>

#include "runtime/core/error.h"

namespace ditrun::models {

namespace {
// torch: exp(f32(-ln(max_period)) * arange_f32 / half), every step in f32.
float float32_frequency(int64_t k, int64_t half, double max_period) {
  return std::exp(float(-std::log(max_period)) * float(k) / float(half));
}
}  // namespace

std::vector<float> timestep_embedding(std::span<const float> values, int64_t dim, EmbeddingArithmetic arithmetic,
                                      double max_period) {
  if (dim <= 0 || dim % 2 != 0) fail("timestep embedding width {} must be even and positive", dim);
  const int64_t half = dim / 2;
  std::vector<float> out(values.size() * size_t(dim));
  for (size_t i = 0; i < values.size(); ++i) {
    float* row = out.data() + i * size_t(dim);
    for (int64_t k = 0; k < half; ++k) {
      double arg;
      if (arithmetic == EmbeddingArithmetic::Float32Arguments) {
        arg = double(values[i] * float32_frequency(k, half, max_period));
      } else {
        arg = double(values[i]) * std::pow(max_period, -double(k) / double(half));
      }
      row[k] = float(std::cos(arg));
      row[half + k] = float(std::sin(arg));
    }
  }
  return out;
}

std::vector<float> scaled_timestep_embedding(std::span<const float> values, int64_t dim, float scale,
                                             double max_period) {
  if (dim <= 0 || dim % 2 != 0) fail("timestep embedding width {} must be even and positive", dim);
  const int64_t half = dim / 2;
  std::vector<float> out(values.size() * size_t(dim));
  for (size_t i = 0; i < values.size(); ++i) {
    float* row = out.data() + i * size_t(dim);
    for (int64_t k = 0; k < half; ++k) {
      const float arg = (values[i] * float32_frequency(k, half, max_period)) * scale;
      row[k] = float(std::cos(double(arg)));
      row[half + k] = float(std::sin(double(arg)));
    }
  }
  return out;
}

}  // namespace ditrun::models
