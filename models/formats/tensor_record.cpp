#include "models/formats/tensor_record.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace ditrun::formats {

int64_t element_count(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return -1;
  }
  return n;
}

std::string shape_string(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

}  // namespace ditrun::formats
