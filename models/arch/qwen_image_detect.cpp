// Qwen-Image params from tensor shapes (models.md 4): the head dim is the size of the per-head
// QK RMSNorm weights; the patch size is not in the tensors (img_in takes packed patches).
#include "models/arch/shape_index.h"

namespace ditrun::arch::detail {

Params detect_qwen_image(const ShapeIndex& t, std::vector<std::string>& assumed) {
  QwenImageParams p;
  const int64_t d = t.inner("img_in.weight", 1);
  p.in_channels = t.inner("img_in.weight", 0);
  p.joint_attention_dim = t.numel("txt_norm.weight");
  p.num_layers = t.count_blocks("transformer_blocks.");
  if (p.num_layers == 0) t.fail_detect("checkpoint has no transformer_blocks.N tensors");
  p.attention_head_dim = t.numel("transformer_blocks.0.attn.norm_q.weight");
  if (p.attention_head_dim <= 0 || d % p.attention_head_dim != 0)
    t.fail_detect(fmt::format("attn.norm_q.weight has {} elements, which does not divide width {}", p.attention_head_dim, d));
  p.num_attention_heads = d / p.attention_head_dim;
  const int64_t mlp = t.inner("transformer_blocks.0.img_mlp.net.0.proj.weight", 1);
  if (mlp != 4 * d)  // the reference FeedForward hard-codes mult 4
    t.fail_detect(fmt::format("img_mlp width {} is not 4 x {}; only the reference MLP ratio 4 is supported", mlp, d));

  p.patch_size = 2;  // every release; img_in only sees packed patches
  assumed.emplace_back("patch_size");
  const int64_t out_rows = t.inner("proj_out.weight", 1);
  if (out_rows % (p.patch_size * p.patch_size) != 0)
    t.fail_detect(fmt::format("proj_out.weight has {} rows, not a multiple of patch {}^2", out_rows, p.patch_size));
  p.out_channels = out_rows / (p.patch_size * p.patch_size);
  p.axes_dims_rope = guess_rope_axes(p.attention_head_dim);
  if (p.attention_head_dim != 128) assumed.emplace_back("axes_dims_rope");
  return p;
}

}  // namespace ditrun::arch::detail
