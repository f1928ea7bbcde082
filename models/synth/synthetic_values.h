// Deterministic pseudo-random weights for synthetic models. Every element is a pure function
// of (seed, tensor name, element index), so a tensor can be generated in any chunking or
// thread order and always comes out the same, on every machine.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "models/arch/layout.h"

namespace ditrun::synth {

// Standard normal samples for elements [first, first + out.size()) of the stream `key`.
void normal_stream(uint64_t key, uint64_t first, std::span<float> out);
uint64_t tensor_key(uint64_t seed, std::string_view tensor_name);

// Values with the scale a trained model has for this role: linear weights ~ N(0, 1/fan_in),
// biases and embeddings small, norm scales around 1.
void synthetic_values(uint64_t seed, const arch::TensorSpec& spec, uint64_t first, std::span<float> out);

}  // namespace ditrun::synth
