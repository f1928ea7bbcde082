// What a double-stream (MMDiT) block costs, for the planner: two streams of width h (image
// and text tokens), each with its q, k, v and output projections (h × h each, fused or not),
// an MLP h → m → h and a modulation of 6h from the conditioning vector, and one joint
// attention over both. Flux's double blocks and Qwen-Image's blocks are this block.
#pragma once

#include <cstdint>

#include "runtime/exec/model.h"

namespace ditrun::models {

struct DoubleStreamCost {
  int64_t hidden, head_dim, mlp;

  // GEMMs and attention for one batch item.
  double flops(const runtime::TokenCounts& t) const;
  // q·kᵀ and p·v over the joint sequence.
  double attention_flops(const runtime::TokenCounts& t) const;
  // Per token: two modulated norms (read + write h each), RMS norm and RoPE of q and k (2h
  // each, plus RoPE's table row), two gated residuals (3h each), GELU of the MLP (2 mlp).
  double elementwise_elements(const runtime::TokenCounts& t) const;
  // Joint attention: q, k, v and the output over text and image tokens.
  double self_attention_elements(const runtime::TokenCounts& t) const;
};

}  // namespace ditrun::models
