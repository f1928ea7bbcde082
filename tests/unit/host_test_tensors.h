// Host tensors and weights for the kernel tests: random f32 tensors, the logical values of a
// view, and small weights quantized into any storage type.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/float_codecs.h"
#include "runtime/core/tensor.h"

namespace ditrun::kernels::cpu {

// A host f32 tensor filled with N(0, sigma) values.
inline Tensor random_tensor(const Shape& shape, uint32_t seed, float sigma = 1.0f) {
  const int64_t n = shape_numel(shape);
  auto memory = std::shared_ptr<float[]>(new float[size_t(std::max<int64_t>(n, 1))]);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  for (int64_t i = 0; i < n; ++i) memory[size_t(i)] = dist(rng);
  return Tensor(memory, memory.get(), DType::F32, shape, Device{});
}

// The logical values of a view, [batch][rows][cols] in order.
inline std::vector<double> values(const Tensor& t) {
  std::vector<double> out;
  for (int64_t b = 0; b < t.batch(); ++b)
    for (int64_t r = 0; r < t.rows(); ++r)
      for (int64_t j = 0; j < t.cols(); ++j) out.push_back(t.row<const float>(b, r)[j]);
  return out;
}

// A weight quantized from random values, owning its bytes.
struct TestWeight {
  std::vector<uint8_t> bytes;
  Weight w;
  TestWeight(std::string name, Shape shape, DType storage, uint32_t seed, float sigma = 0.5f) {
    std::vector<float> v(size_t(shape_numel(shape)));
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, sigma);
    for (float& f : v) f = dist(rng);
    bytes.resize(size_t(dtype_bytes(storage, int64_t(v.size()), name)));
    quantize_from_f32(storage, v, bytes);
    w.name = std::move(name);
    w.shape = std::move(shape);
    w.storage = storage;
    w.bytes = bytes;
  }
  TestWeight(const TestWeight&) = delete;
};

}  // namespace ditrun::kernels::cpu
