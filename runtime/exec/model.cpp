#include "runtime/exec/model.h"

#include "runtime/core/error.h"

namespace ditrun::runtime {

const Tensor& ActivationState::at(std::string_view name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("activation state has no tensor '{}'", name);
  return it->second;
}

int64_t ActivationState::integer(std::string_view name) const {
  auto it = ints_.find(name);
  if (it == ints_.end()) fail("activation state has no value '{}'", name);
  return it->second;
}

const DeviceWeight& WeightLookup::at(std::string_view name) const {
  const DeviceWeight* w = find(name);
  if (!w) fail("model weight '{}' is missing", name);
  return *w;
}

}  // namespace ditrun::runtime
