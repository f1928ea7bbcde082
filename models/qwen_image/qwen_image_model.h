// Qwen-Image's transformer as a runtime::Model, written from the description of diffusers'
// `QwenImageTransformer2DModel` in ../shared/testdata/README.md ("MMDiT transformers"):
//   prologue   img_in on the packed 2×2 patches; the text RMS-normed (txt_norm), then txt_in;
//              temb from σ (diffusers' Timesteps with scale 1000, then the timestep MLP);
//              the 3-axis RoPE table over [text, image] (image positions centred, text after)
//   blocks     transformer_blocks.N: per-stream modulation (shift, scale, gate ×2), one joint
//              attention over [text, image] with per-head RMS-normed, rotated q and k and the
//              text mask on the keys, per-stream gated output and tanh-GELU MLP
//   epilogue   norm_out (scale, then shift) and proj_out: the packed velocity
// Inputs (the reference io names): img [B, L_img, 64], txt [B, L_txt, joint_attention_dim],
// txt_mask [B, L_txt] (optional; 1 = real token, real tokens first), timesteps [B] (σ),
// img_shapes [B, 3] (frames, rows, cols of the token grid; every item the same).
// Output [B, L_img, 4·out_channels].
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/arch/model_config.h"
#include "runtime/exec/model.h"

namespace ditrun::models::qwen_image {

std::unique_ptr<runtime::Model> make_qwen_image_model(const arch::QwenImageParams& params);

// The (frame, row, col) RoPE positions of the official code for a grid of `frames` × `rows` ×
// `cols` image tokens followed by `text` tokens, in the joint sequence's order (text first):
// image rows and columns centred as r − ⌈rows/2⌉, text token k at max(⌊rows/2⌋, ⌊cols/2⌋) + k
// on all three axes. ComfyUI centres odd sizes as r − ⌊rows/2⌋ instead.
std::vector<float> qwen_rope_positions(int64_t frames, int64_t rows, int64_t cols, int64_t text);

}  // namespace ditrun::models::qwen_image
