#include "runtime/exec/state_message.h"

#include <string_view>

#include "runtime/core/error.h"

namespace ditrun::runtime {
namespace {
constexpr std::string_view kPrefix = "state/";
constexpr std::string_view kDeviceState = "device_state";

uint64_t tensor_bytes(const Tensor& t) { return uint64_t(t.numel()) * uint64_t(dtype_info(t.dtype()).block_bytes); }
}  // namespace

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

bool has_device_state(const transport::TensorMessage& message) { return message.header.contains(kDeviceState); }

PendingSend put_state_on_link(Backend& backend, const ActivationState& state, transport::TensorMessage& message,
                              transport::DeviceLink& link, int peer, Stream transfers) {
  PendingSend pending;
  // Views become contiguous copies first (one range of bytes per tensor on the wire).
  for (const auto& [name, tensor] : state.tensors()) {
    if (tensor.contiguous()) {
      pending.keep.push_back(tensor);
    } else {
      Tensor packed = backend.empty(tensor.shape());
      backend.copy(tensor, packed);
      pending.keep.push_back(std::move(packed));
    }
  }
  // The transfers read what the compute stream wrote.
  backend.wait_event(transfers, backend.record_event(backend.compute_stream()));
  nlohmann::json list = nlohmann::json::array();
  size_t i = 0;
  for (const auto& [name, tensor] : state.tensors()) {
    const Tensor& t = pending.keep[i++];
    list.push_back({{"name", name}, {"shape", t.shape()}, {"dtype", dtype_name(t.dtype())}});
    link.send(t.data(), tensor_bytes(t), peer, backend.native_stream(transfers));
  }
  pending.done = backend.record_event(transfers);
  message.header[std::string(kDeviceState)] = std::move(list);
  for (const auto& [name, value] : state.ints()) message.ints[name] = value;
  return pending;
}

ActivationState take_state_from_link(Backend& backend, transport::TensorMessage& message, transport::DeviceLink& link,
                                      int peer, Stream transfers) {
  ActivationState state;
  std::vector<Tensor> incoming;
  for (const auto& entry : message.header.at(kDeviceState)) {
    const std::string dtype = entry.at("dtype").get<std::string>();
    if (dtype != dtype_name(backend.activation_dtype()))
      fail("state from rank {}: tensor '{}' arrives as {}, but this rank computes in {} (ranks must share "
           "--precision)",
           peer, entry.at("name").get<std::string>(), dtype, dtype_name(backend.activation_dtype()));
    incoming.push_back(backend.empty(entry.at("shape").get<Shape>()));
  }
  // Memory just handed out may still be read by queued compute work: the receives wait for
  // it, and the compute stream waits for the receives.
  backend.wait_event(transfers, backend.record_event(backend.compute_stream()));
  size_t i = 0;
  for (const auto& entry : message.header.at(kDeviceState)) {
    Tensor& t = incoming[i++];
    link.recv(t.data(), tensor_bytes(t), peer, backend.native_stream(transfers));
    state.set(entry.at("name").get<std::string>(), t);
  }
  backend.wait_event(backend.compute_stream(), backend.record_event(transfers));
  message.header.erase(std::string(kDeviceState));
  for (const auto& [name, value] : message.ints) state.set_int(name, value);
  message.ints.clear();
  return state;
}

}  // namespace ditrun::runtime
