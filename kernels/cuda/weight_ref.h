// A weight as the CUDA kernels see it: its stored bytes in device memory, still in their
// storage type, and its scales (f32, in device memory) in the file's layout.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/core/weight.h"

namespace ditrun::kernels::cuda {

struct WeightRef {
  const Weight* source = nullptr;   // name, logical shape, storage type, host scales (for choices and errors)
  const uint8_t* bytes = nullptr;   // device memory: rows x row_bytes
  const float* scales = nullptr;    // device memory: the source's scales (null without)
  const float* a_scales = nullptr;  // device memory: the scales in cuBLASLt's layout for operand A (fp8 paths)

  const std::string& name() const { return source->name; }
  DType storage() const { return source->storage; }
  int64_t rows() const { return source->rows(); }
  int64_t cols() const { return source->cols(); }
};

}  // namespace ditrun::kernels::cuda
