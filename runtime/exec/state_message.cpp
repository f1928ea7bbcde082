#include "runtime/exec/state_message.h"

#include <string_view>

namespace ditrun::runtime {
namespace {
constexpr std::string_view kPrefix = "state/";
}

void put_state(Backend& backend, const ActivationState& state, transport::TensorMessage& message) {
  for (const auto& [name, tensor] : state.tensors()) {
    HostTensor host(tensor.shape());
    backend.download(tensor, host.data, backend.compute_stream());
    message.tensors[std::string(kPrefix) + name] = std::move(host);
  }
  backend.synchronize(backend.compute_stream());
  for (const auto& [name, value] : state.ints()) message.ints[name] = value;
}

ActivationState take_state(Backend& backend, transport::TensorMessage& message) {
  ActivationState state;
  for (auto it = message.tensors.begin(); it != message.tensors.end();) {
    if (!it->first.starts_with(kPrefix)) {
      ++it;
      continue;
    }
    Tensor t = backend.empty(it->second.shape);
    backend.upload(it->second.data, t, backend.compute_stream());
    state.set(it->first.substr(kPrefix.size()), std::move(t));
    it = message.tensors.erase(it);
  }
  for (const auto& [name, value] : message.ints) state.set_int(name, value);
  message.ints.clear();
  return state;
}

}  // namespace ditrun::runtime
