// What a checkpoint file says about one tensor, independent of the container format.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"

namespace ditrun::formats {

using ditrun::Shape;

struct TensorRecord {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;          // PyTorch order (outermost first); GGUF's reversed dims are undone
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;
};

// Product of dims, or -1 on overflow / negative dims.
inline int64_t element_count(const Shape& shape) { return shape_numel(shape); }
using ditrun::shape_string;

}  // namespace ditrun::formats
