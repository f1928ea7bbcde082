// Qwen-Image tensors (models.md 4) in the module order of the reference model class
// (time embedder, txt_norm, img_in, txt_in, blocks, norm_out, proj_out); inside a block the
// modulation and MLP of each stream come before the joint attention, whose per-head norms
// precede its projections.
#include "models/arch/layout_builder.h"

namespace ditrun::arch::detail {

std::vector<TensorSpec> qwen_image_layout(const QwenImageParams& p) {
  const int64_t D = p.attention_head_dim, d = p.num_attention_heads * D, m = 4 * d;
  constexpr int64_t kTimeFreq = 256;
  LayoutBuilder b;
  b.linear("time_text_embed.timestep_embedder.linear_1", d, kTimeFreq);
  b.linear("time_text_embed.timestep_embedder.linear_2", d, d);
  b.norm("txt_norm.weight", p.joint_attention_dim);
  b.linear("img_in", d, p.in_channels);
  b.linear("txt_in", d, p.joint_attention_dim);
  for (int64_t i = 0; i < p.num_layers; ++i) {
    const std::string pre = fmt::format("transformer_blocks.{}.", i);
    for (const char* s : {"img", "txt"}) {
      b.linear(pre + s + "_mod.1", 6 * d, d);
      b.linear(pre + s + "_mlp.net.0.proj", m, d);
      b.linear(pre + s + "_mlp.net.2", d, m);
    }
    for (const char* n : {"norm_q", "norm_k", "norm_added_q", "norm_added_k"})
      b.norm(pre + "attn." + n + ".weight", D);
    for (const char* l : {"to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj"})
      b.linear(pre + "attn." + l, d, d);
    b.linear(pre + "attn.to_out.0", d, d);
    b.linear(pre + "attn.to_add_out", d, d);
  }
  b.linear("norm_out.linear", 2 * d, d);  // chunk order (scale, shift)
  b.linear("proj_out", p.patch_size * p.patch_size * p.out_channels, d);
  return b.take();
}

}  // namespace ditrun::arch::detail
