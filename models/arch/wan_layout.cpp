// Wan 2.1/2.2 tensors (models.md 2.2) in state_dict order, which is the order of the reference
// files. PyTorch lists a module's own parameters before its children's, so `blocks.N.modulation`
// comes first in its block, `head.modulation` before `head.head`, and `img_emb.emb_pos` before
// `img_emb.proj`; img_emb is registered after head in WanModel, so it comes last.
#include "models/arch/layout_builder.h"

namespace ditrun::arch::detail {

namespace {
constexpr int64_t kClipDim = 1280;          // open-clip ViT-H/14 penultimate features
constexpr int64_t kFlfPosTokens = 2 * 257;  // FLF2V: first and last frame CLIP tokens
}  // namespace

std::vector<TensorSpec> wan_layout(const WanParams& p) {
  const int64_t d = p.dim, f = p.ffn_dim;
  const int64_t patch = p.patch_size[0] * p.patch_size[1] * p.patch_size[2];
  const bool clip = p.model_type == "i2v" || p.model_type == "flf2v";
  LayoutBuilder b;
  b.add("patch_embedding.weight", {d, p.in_dim, p.patch_size[0], p.patch_size[1], p.patch_size[2]},
        TensorRole::PatchEmbed);
  b.add("patch_embedding.bias", {d}, TensorRole::Bias);
  b.linear("text_embedding.0", d, p.text_dim);
  b.linear("text_embedding.2", d, d);
  b.linear("time_embedding.0", d, p.freq_dim);
  b.linear("time_embedding.2", d, d);
  b.linear("time_projection.1", 6 * d, d);

  for (int64_t i = 0; i < p.num_layers; ++i) {
    const std::string pre = fmt::format("blocks.{}.", i);
    b.add(pre + "modulation", {1, 6, d}, TensorRole::Modulation);
    for (const char* l : {"q", "k", "v", "o"}) b.linear(pre + "self_attn." + l, d, d);
    if (p.qk_norm) {
      b.norm(pre + "self_attn.norm_q.weight", d);
      b.norm(pre + "self_attn.norm_k.weight", d);
    }
    if (p.cross_attn_norm) {
      b.norm(pre + "norm3.weight", d);
      b.add(pre + "norm3.bias", {d}, TensorRole::Bias);
    }
    for (const char* l : {"q", "k", "v", "o"}) b.linear(pre + "cross_attn." + l, d, d);
    if (p.qk_norm) {
      b.norm(pre + "cross_attn.norm_q.weight", d);
      b.norm(pre + "cross_attn.norm_k.weight", d);
    }
    if (clip) {
      b.linear(pre + "cross_attn.k_img", d, d);
      b.linear(pre + "cross_attn.v_img", d, d);
      if (p.qk_norm) b.norm(pre + "cross_attn.norm_k_img.weight", d);
    }
    b.linear(pre + "ffn.0", f, d);
    b.linear(pre + "ffn.2", d, f);
  }
  b.add("head.modulation", {1, 2, d}, TensorRole::Modulation);
  b.linear("head.head", patch * p.out_dim, d);

  if (clip) {
    if (p.model_type == "flf2v") b.add("img_emb.emb_pos", {1, kFlfPosTokens, kClipDim}, TensorRole::PositionEmbed);
    b.norm("img_emb.proj.0.weight", kClipDim);  // affine LayerNorm
    b.add("img_emb.proj.0.bias", {kClipDim}, TensorRole::Bias);
    b.linear("img_emb.proj.1", kClipDim, kClipDim);
    b.linear("img_emb.proj.3", d, kClipDim);
    b.norm("img_emb.proj.4.weight", d);
    b.add("img_emb.proj.4.bias", {d}, TensorRole::Bias);
  }
  return b.take();
}

}  // namespace ditrun::arch::detail
