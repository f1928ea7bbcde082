// Tensor shapes in PyTorch order (outermost dim first), shared by files, weights and
// activations.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ditrun {

using Shape = std::vector<int64_t>;

// Product of dims (1 for a scalar), or -1 on overflow or a negative dim.
int64_t shape_numel(const Shape& shape);
std::string shape_string(const Shape& shape);  // "[3072, 64]"

}  // namespace ditrun
