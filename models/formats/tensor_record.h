// What a checkpoint file says about one tensor, independent of the container format.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/dtype.h"

namespace ditrun::formats {

using Shape = std::vector<int64_t>;

struct TensorRecord {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;          // PyTorch order (outermost first); GGUF's reversed dims are undone
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;
};

// Product of dims, or -1 on overflow / negative dims.
int64_t element_count(const Shape& shape);
std::string shape_string(const Shape& shape);  // "[3072, 64]"

}  // namespace ditrun::formats
