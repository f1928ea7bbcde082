// The activation state between pipeline stages as a transport message, two ways:
//
//  - through the host: every tensor downloaded to host f32 (exact: the CPU backend's
//    activations are f32, and bf16 values survive f32 and the upload's rounding unchanged)
//    under "state/<name>"; the receiving stage uploads them again.
//  - device to device (both stages on CUDA with an NCCL link): the message carries only each
//    tensor's name, shape and dtype (header "device_state"); the bytes travel over the link on
//    a transfer stream, ordered after the compute stream's work on the sender and before its
//    use on the receiver, with no host copy.
//
// Either way a state crosses ranks bit for bit, and the state's integers travel as they are.
// Other entries of the message (the sampler's latent, job facts) are left alone.
#pragma once

#include <vector>

#include "runtime/exec/model.h"
#include "transport/device_link.h"
#include "transport/tensor_message.h"

namespace ditrun::runtime {

void put_state(Backend& backend, const ActivationState& state, transport::TensorMessage& message);
ActivationState take_state(Backend& backend, transport::TensorMessage& message);

// A device-to-device send in flight: its tensors must live (their memory must not be handed
// out again) until `done` is complete.
struct PendingSend {
  Event done;
  std::vector<Tensor> keep;
};

bool has_device_state(const transport::TensorMessage& message);
PendingSend put_state_on_link(Backend& backend, const ActivationState& state, transport::TensorMessage& message,
                              transport::DeviceLink& link, int peer, Stream transfers);
ActivationState take_state_from_link(Backend& backend, transport::TensorMessage& message, transport::DeviceLink& link,
                                     int peer, Stream transfers);

}  // namespace ditrun::runtime
