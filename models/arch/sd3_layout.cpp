// SD3/SD3.5 MMDiT tensors (models.md 3.2) in the module order of the reference model: the
// pos_embed table (MMDiT's own tensor, so first), embedders, joint blocks (context_block then
// x_block; attention qkv, proj, QK norms; MMDiT-X attn2; MLP; adaLN), final layer. The last
// block's context stream is "pre_only": qkv and a 2-way adaLN only.
#include <algorithm>

#include "models/arch/layout_builder.h"

namespace ditrun::arch::detail {

namespace {

void attention(LayoutBuilder& b, const std::string& pre, int64_t h, int64_t head_dim, const SD3Params& p,
               bool with_proj) {
  b.linear(pre + ".qkv", 3 * h, h, p.qkv_bias);
  if (with_proj) b.linear(pre + ".proj", h, h);
  if (p.qk_norm == "rms") {
    b.norm(pre + ".ln_q.weight", head_dim);
    b.norm(pre + ".ln_k.weight", head_dim);
  }
}

}  // namespace

std::vector<TensorSpec> sd3_layout(const SD3Params& p) {
  const int64_t h = p.hidden_size, D = h / p.num_heads, m = static_cast<int64_t>(h * p.mlp_ratio);
  constexpr int64_t kTimeFreq = 256;
  LayoutBuilder b;
  b.add("pos_embed", {1, p.pos_embed_max_size * p.pos_embed_max_size, h}, TensorRole::PositionEmbed);
  b.add("x_embedder.proj.weight", {h, p.in_channels, p.patch_size, p.patch_size}, TensorRole::PatchEmbed);
  b.add("x_embedder.proj.bias", {h}, TensorRole::Bias);
  b.linear("t_embedder.mlp.0", h, kTimeFreq);
  b.linear("t_embedder.mlp.2", h, h);
  b.linear("y_embedder.mlp.0", h, p.adm_in_channels);
  b.linear("y_embedder.mlp.2", h, h);
  b.linear("context_embedder", h, p.context_in_dim);

  const auto& attn2 = p.x_block_self_attn_layers;
  for (int64_t i = 0; i < p.depth; ++i) {
    const bool last = i == p.depth - 1;
    const std::string ctx = fmt::format("joint_blocks.{}.context_block", i);
    attention(b, ctx + ".attn", h, D, p, !last);
    if (!last) {
      b.linear(ctx + ".mlp.fc1", m, h);
      b.linear(ctx + ".mlp.fc2", h, m);
    }
    b.linear(ctx + ".adaLN_modulation.1", (last ? 2 : 6) * h, h);

    const std::string x = fmt::format("joint_blocks.{}.x_block", i);
    const bool dual = std::find(attn2.begin(), attn2.end(), i) != attn2.end();
    attention(b, x + ".attn", h, D, p, true);
    if (dual) attention(b, x + ".attn2", h, D, p, true);
    b.linear(x + ".mlp.fc1", m, h);
    b.linear(x + ".mlp.fc2", h, m);
    b.linear(x + ".adaLN_modulation.1", (dual ? 9 : 6) * h, h);
  }
  b.linear("final_layer.linear", p.patch_size * p.patch_size * p.out_channels, h);
  b.linear("final_layer.adaLN_modulation.1", 2 * h, h);
  return b.take();
}

}  // namespace ditrun::arch::detail
