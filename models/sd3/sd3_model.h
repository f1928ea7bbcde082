// Stability's SD3 / SD3.5 MMDiT (MMDiT-X) as a runtime::Model, written from the description
// of Stability-AI sd3.5 `mmditx.py` in ../shared/testdata/README.md ("MMDiT transformers"):
//   prologue   2×2 patch embedding plus the centre-cropped pos_embed rows, the conditioning
//              vector c = t-embedding(t) + y-embedding(pooled), the context embedded
//   blocks     joint_blocks.N: one attention over [context, image] (per-stream adaLN, qkv,
//              RMS-normed q and k per head), then per-stream gated updates; SD3.5 Medium's
//              x_block attn2 adds a self-attention over the image tokens alone; the last
//              block's context stream only supplies q, k and v
//   epilogue   final_layer (shift, then scale) and the patch-major unpatchify
// Inputs (the reference io names): x [B, 16, H, W], t [B] (1000·σ), y [B, pooled],
// context [B, L, context_in_dim]. Output [B, 16, H, W] (the velocity).
#pragma once

#include <memory>

#include "models/arch/model_config.h"
#include "runtime/exec/model.h"

namespace ditrun::models::sd3 {

std::unique_ptr<runtime::Model> make_sd3_model(const arch::SD3Params& params);

}  // namespace ditrun::models::sd3
