// What a double-stream (MMDiT) block costs, for the planner, and the layout of the joint
// sequence such blocks pass on: two streams of width h (image
// and text tokens), each with its q, k, v and output projections (h × h each, fused or not),
// an MLP h → m → h and a modulation of 6h from the conditioning vector, and one joint
// attention over both. Flux's double blocks and Qwen-Image's blocks are this block.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

// A Block that answers the planner's questions with a double-stream block's cost.
class DoubleStreamBlock : public runtime::Block {
 public:
  explicit DoubleStreamBlock(DoubleStreamCost cost) : cost_(cost) {}
  double flops(const runtime::TokenCounts& t) const override { return cost_.flops(t); }
  double attention_flops(const runtime::TokenCounts& t) const override { return cost_.attention_flops(t); }
  double elementwise_elements(const runtime::TokenCounts& t) const override { return cost_.elementwise_elements(t); }
  double self_attention_elements(const runtime::TokenCounts& t) const override {
    return cost_.self_attention_elements(t);
  }

 private:
  DoubleStreamCost cost_;
};

// The state layout of a joint sequence, text rows ("txt_len") then image rows ("img_len"):
// `token_tensors` split by image rows over sequence-parallel ranks with the text prefix whole
// on every rank, `batch_tensors` split by item over CFG-parallel ranks.
runtime::StateLayout joint_sequence_layout(const runtime::ActivationState& state, std::vector<std::string> token_tensors,
                                           std::vector<std::string> batch_tensors);

}  // namespace ditrun::models
