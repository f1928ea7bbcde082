// FLUX.1 transformer blocks (models.md §1.4), written against the Backend interface.
//
// Activation state between blocks:
//   "x"   [B, L_txt + L_img, h]  the joint sequence, text tokens first. Double blocks work on
//                                its two row ranges as views; single blocks on all of it.
//   "vec" [B, 1, h]              the conditioning vector (time + guidance + pooled text)
//   "pe"  [B, L, D]              RoPE (cos, sin) table for the joint sequence
//   ints "txt_len", "img_len"
#pragma once

#include <memory>

#include "models/arch/model_config.h"
#include "runtime/exec/model.h"

namespace ditrun::models::flux {

struct Dims {
  int64_t hidden, heads, head_dim, mlp;
  explicit Dims(const arch::FluxParams& p)
      : hidden(p.hidden_size), heads(p.num_heads), head_dim(p.hidden_size / p.num_heads),
        mlp(int64_t(double(p.hidden_size) * p.mlp_ratio)) {}
};

inline constexpr float kNormEps = 1e-6f;  // every LayerNorm and QK RMSNorm in Flux

std::unique_ptr<runtime::Block> make_double_block(int index, const Dims& dims);
std::unique_ptr<runtime::Block> make_single_block(int index, const Dims& dims);

// The most activation elements a block's forward allocates on top of the state it receives,
// for Model::activation_elements. Each is defined beside its forward so the two change together.
int64_t double_block_temporaries(const Dims& dims, int64_t txt_len, int64_t img_len, int64_t batch);
int64_t single_block_temporaries(const Dims& dims, int64_t tokens, int64_t batch);

}  // namespace ditrun::models::flux
