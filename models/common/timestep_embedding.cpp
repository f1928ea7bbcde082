#include "models/common/timestep_embedding.h"

#include <cmath>

#include "runtime/core/error.h"

namespace ditrun::models {

namespace {
// torch: exp(f32(-ln(max_period)) * arange_f32 / half), every step in f32.
float float32_frequency(int64_t k, int64_t half, double max_period) {
  return std::exp(float(-std::log(max_period)) * float(k) / float(half));
}

// One row of [cos(arg(v, k)), sin(arg(v, k))] per value, k < dim/2.
template <class Argument>
std::vector<float> embedding_rows(std::span<const float> values, int64_t dim, const Argument& arg) {
  if (dim <= 0 || dim % 2 != 0) fail("timestep embedding width {} must be even and positive", dim);
  const int64_t half = dim / 2;
  std::vector<float> out(values.size() * size_t(dim));
  for (size_t i = 0; i < values.size(); ++i) {
    float* row = out.data() + i * size_t(dim);
    for (int64_t k = 0; k < half; ++k) {
      const double a = arg(values[i], k, half);
      row[k] = float(std::cos(a));
      row[half + k] = float(std::sin(a));
    }
  }
  return out;
}

}  // namespace

std::vector<float> timestep_embedding(std::span<const float> values, int64_t dim, EmbeddingArithmetic arithmetic,
                                      double max_period) {
  return embedding_rows(values, dim, [&](float v, int64_t k, int64_t half) {
    if (arithmetic == EmbeddingArithmetic::Float32Arguments) return double(v * float32_frequency(k, half, max_period));
    return double(v) * std::pow(max_period, -double(k) / double(half));
  });
}

std::vector<float> scaled_timestep_embedding(std::span<const float> values, int64_t dim, float scale,
                                             double max_period) {
  return embedding_rows(values, dim, [&](float v, int64_t k, int64_t half) {
    return double((v * float32_frequency(k, half, max_period)) * scale);
  });
}

}  // namespace ditrun::models
