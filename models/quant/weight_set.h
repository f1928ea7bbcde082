// Resolving a checkpoint's tensors into Weights (runtime/core/weight.h): which encoding each
// tensor uses, and the scale tensors and markers that belong to it.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "models/formats/checkpoint.h"
#include "runtime/core/weight.h"

namespace ditrun::quant {

using formats::Shape;

using ditrun::Encoding;
using ditrun::encoding_name;
using ditrun::ScaleLayout;
using ditrun::Weight;

// Every weight of a checkpoint with its encoding resolved. Auxiliary tensors (scales,
// markers) are folded into the weights they belong to and do not appear on their own.
class WeightSet {
 public:
  explicit WeightSet(const formats::Checkpoint& checkpoint);

  const std::vector<Weight>& weights() const { return weights_; }
  const Weight* find(std::string_view name) const;
  const Weight& at(std::string_view name) const;
  // The legacy `scaled_fp8` marker with 2 elements means "dequantize, then compute in high
  // precision" (no fp8 matmul).
  bool has_scaled_fp8_marker() const { return has_marker_; }
  bool fp8_matmul_allowed() const { return fp8_matmul_allowed_; }
  const formats::Checkpoint& checkpoint() const { return checkpoint_; }

 private:
  const formats::Checkpoint& checkpoint_;
  std::vector<Weight> weights_;
  std::unordered_map<std::string, size_t> by_name_;
  bool has_marker_ = false;
  bool fp8_matmul_allowed_ = true;
};

// True for the tensor names that carry scales or markers rather than weights.
bool is_auxiliary_tensor(std::string_view name);

}  // namespace ditrun::quant
