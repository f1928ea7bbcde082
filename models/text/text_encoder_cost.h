// The planner's view of a text encoder encoding one prompt of `tokens` tokens: a BlockCost
// per layer (its stored bytes, GEMM and attention FLOPs, elementwise traffic) and the working
// buffers it needs on a device. partition/encoder_placement.h places it.
#pragma once

#include <cstdint>
#include <string>

#include "models/text/text_encoder_source.h"
#include "partition/encoder_placement.h"

namespace ditrun::models::text {

// `activation_element_bytes`: 4 for the CPU's f32 activations, 2 for bf16 on a GPU.
partition::EncoderCost text_encoder_cost(const TextEncoderSource& encoder, int64_t tokens, int activation_element_bytes,
                                         const std::string& name);

}  // namespace ditrun::models::text
