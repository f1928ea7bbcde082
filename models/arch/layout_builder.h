// Internal: appends TensorSpecs in state_dict order for the per-family layouts.
#pragma once

#include <string>
#include <vector>

#include <fmt/format.h>

#include "models/arch/layout.h"

namespace ditrun::arch::detail {

class LayoutBuilder {
 public:
  // `<prefix>.weight` [out, in] and, with bias, `<prefix>.bias` [out].
  void linear(const std::string& prefix, int64_t out, int64_t in, bool bias = true) {
    add(prefix + ".weight", {out, in}, TensorRole::LinearWeight);
    if (bias) add(prefix + ".bias", {out}, TensorRole::Bias);
  }
  // A norm's scale vector under its own full name (`.scale` for Flux, `.weight` elsewhere).
  void norm(const std::string& name, int64_t n) { add(name, {n}, TensorRole::NormScale); }
  void add(std::string name, formats::Shape shape, TensorRole role) {
    specs_.push_back({std::move(name), std::move(shape), role});
  }
  std::vector<TensorSpec> take() { return std::move(specs_); }

 private:
  std::vector<TensorSpec> specs_;
};

std::vector<TensorSpec> flux_layout(const FluxParams& p);
std::vector<TensorSpec> wan_layout(const WanParams& p);
std::vector<TensorSpec> qwen_image_layout(const QwenImageParams& p);
std::vector<TensorSpec> sd3_layout(const SD3Params& p);

}  // namespace ditrun::arch::detail
