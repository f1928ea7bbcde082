// Tensors between host f32 and a backend, synchronously: what model prologues and epilogues
// and the host path of the rank-to-rank exchanges use.
#pragma once

#include <span>

#include "runtime/backend/backend.h"

namespace ditrun::runtime {

// A backend tensor of `shape` filled with `values` (size must match).
Tensor to_backend(Backend& backend, std::span<const float> values, const Shape& shape);
// The tensor's values (any view) as host f32, after the compute stream has produced them.
HostTensor to_host(Backend& backend, const Tensor& t);

}  // namespace ditrun::runtime
