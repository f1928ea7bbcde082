// What every GPU test shares: a skip with the reason where no GPU is usable (ctest then
// reports the test as skipped, never as passed), device tensors made from host values, and
// host values read back from device tensors (views included).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/tensor.h"

namespace ditrun::test {

// Why this process cannot run CUDA kernels (no driver, no device), or nothing when it can.
// The first call selects device 0.
std::optional<std::string> gpu_unavailable_reason();

// A contiguous device tensor of `dtype` (F32 or BF16) holding `values` (rounded to bf16 for
// BF16), in memory of its own.
Tensor device_tensor(const Shape& shape, DType dtype, const std::vector<float>& values);
// A contiguous host f32 tensor over `values` (which must outlive it): the CPU twin's operand.
Tensor host_tensor(const Shape& shape, std::vector<float>& values);
// Every element of a device tensor (any view, F32 or BF16) as f32, in [batch][row][col] order.
std::vector<float> download(const Tensor& t);

// Deterministic test values.
std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.0f);
// Largest |a - b| and where.
struct MaxDiff {
  double value = 0;
  size_t index = 0;
};
MaxDiff max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace ditrun::test

#define DITRUN_REQUIRE_GPU()                                                      \
  do {                                                                            \
    if (const auto reason_ = ::ditrun::test::gpu_unavailable_reason())            \
      GTEST_SKIP() << "needs a CUDA GPU: " << *reason_;                           \
  } while (0)
