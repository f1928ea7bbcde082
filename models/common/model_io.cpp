#include "models/common/model_io.h"

#include "runtime/core/error.h"

namespace ditrun::models {

bool shape_fits(const Shape& shape, const Shape& want) {
  if (shape.size() != want.size()) return false;
  for (size_t i = 0; i < want.size(); ++i)
    if (want[i] >= 0 && want[i] != shape[i]) return false;
  return true;
}

const HostTensor& require_input(const runtime::HostTensors& inputs, std::string_view name, const Shape& want,
                                std::string_view layout) {
  auto it = inputs.find(name);
  if (it == inputs.end()) fail("model input '{}' ({}) is missing", name, layout);
  const HostTensor& t = it->second;
  if (!shape_fits(t.shape, want)) fail("model input '{}': shape {} should be {}", name, shape_string(t.shape), layout);
  return t;
}

const HostTensor* optional_input(const runtime::HostTensors& inputs, std::string_view name) {
  auto it = inputs.find(name);
  return it == inputs.end() ? nullptr : &it->second;
}

}  // namespace ditrun::models
