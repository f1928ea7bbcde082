// Comparing a checkpoint's tensors with the layout its config implies, so a wrong sidecar or a
// variant we do not model fails at load with the first differing tensor named.
#include <unordered_map>

#include "models/arch/detect.h"
#include "models/arch/layout.h"
#include "runtime/core/error.h"

namespace ditrun::arch {

namespace {

// GGUF writers may drop leading size-1 dims (or, for Wan modulation, force 3 dims), so shapes
// are compared without them.
formats::Shape without_leading_ones(const formats::Shape& s) {
  size_t i = 0;
  while (i + 1 < s.size() && s[i] == 1) ++i;
  return formats::Shape(s.begin() + static_cast<std::ptrdiff_t>(i), s.end());
}

// ComfyUI scaled-fp8 side tensors accompany layers without being layer parameters.
bool is_side_tensor(const std::string& name) {
  return name == "scaled_fp8" || name.ends_with(".scale_weight") || name.ends_with(".scale_input");
}

}  // namespace

void check_tensors_match(const ModelConfig& config, const std::vector<NamedShape>& tensors, const std::string& source) {
  std::unordered_map<std::string, const formats::Shape*> have;
  for (const auto& t : tensors)
    if (!is_side_tensor(t.name)) have.emplace(t.name, &t.shape);
  const auto layout = tensor_layout(config);
  size_t found = 0;
  for (const auto& spec : layout) {
    auto it = have.find(spec.name);
    if (it == have.end())
      fail("{}: tensor '{}' {} of {} is missing from the checkpoint", source, spec.name, formats::shape_string(spec.shape),
           config.variant);
    if (without_leading_ones(*it->second) != without_leading_ones(spec.shape))
      fail("{}: tensor '{}' has shape {}, but {} needs {}", source, spec.name, formats::shape_string(*it->second),
           config.variant, formats::shape_string(spec.shape));
    ++found;
  }
  if (found != have.size()) {
    std::unordered_map<std::string, bool> known;
    for (const auto& spec : layout) known.emplace(spec.name, true);
    for (const auto& t : tensors)
      if (!is_side_tensor(t.name) && !known.count(t.name))
        fail("{}: tensor '{}' is not part of {} ({} extra tensors); this variant is not supported", source, t.name,
             config.variant, have.size() - found);
  }
}

}  // namespace ditrun::arch
