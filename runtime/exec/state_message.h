// The activation state between pipeline stages as a transport message: every tensor
// downloaded to host f32 (exact: the CPU backend's activations are f32, and bf16 values
// survive f32 and the upload's rounding unchanged) under "state/<name>", and the state's
// integers as they are. The receiving stage uploads them again, so a state crosses ranks bit
// for bit. Other entries of the message (the sampler's latent, job facts) are left alone.
#pragma once

#include "runtime/exec/model.h"
#include "transport/tensor_message.h"

namespace ditrun::runtime {

void put_state(Backend& backend, const ActivationState& state, transport::TensorMessage& message);
ActivationState take_state(Backend& backend, transport::TensorMessage& message);

}  // namespace ditrun::runtime
