// Wan 2.1 transformer blocks (models.md §2.4), written against the Backend interface.
//
// Activation state between blocks:
//   "x"       [B, L, d]        video tokens, (frame, row, col) order
//   "e0"      [B, 6, d]        time projection (added to each block's modulation table);
//             [B, L, 6d]       per token with Wan 2.2 TI2V's per-token timesteps
//   "context" [B, text_len, d] embedded text
//   "context_img" [B, 257, d]  embedded CLIP image features (Wan 2.1 I2V only)
//   "pe"      [1, L, D]        3-D RoPE table (frame, row, col axes)
// plus "e" [B, 1, d] (per token: [B, L, d]), the raw time embedding the head modulates with.
#pragma once

#include <memory>

#include "models/arch/model_config.h"
#include "runtime/exec/model.h"

namespace ditrun::models::wan {

// Wan 2.1 I2V's image branch: the CLIP ViT-H/14 penultimate features of the conditioning
// image, 257 tokens of 1280, embedded by img_emb into the image context the blocks'
// cross-attention reads beside the text.
inline constexpr int64_t kClipTokens = 257, kClipWidth = 1280;

struct Dims {
  int64_t dim, heads, head_dim, ffn, text_len;
  bool qk_norm, cross_attn_norm;
  bool image_context;  // model_type i2v: the blocks also attend to the image context
  float eps;
  explicit Dims(const arch::WanParams& p)
      : dim(p.dim), heads(p.num_heads), head_dim(p.dim / p.num_heads), ffn(p.ffn_dim), text_len(p.text_len),
        qk_norm(p.qk_norm), cross_attn_norm(p.cross_attn_norm), image_context(p.model_type == "i2v"),
        eps(float(p.eps)) {}
};

std::unique_ptr<runtime::Block> make_block(int index, const Dims& dims);

// The most activation elements a block's forward allocates on top of the state it receives,
// for Model::activation_elements; defined beside the forward so the two change together.
// `per_token_time`: Wan 2.2 TI2V's per-token modulation ([B·L, 6, d] instead of [B, 6, d]).
int64_t block_temporaries(const Dims& dims, int64_t tokens, int64_t batch, bool per_token_time);

}  // namespace ditrun::models::wan
