// FLUX.1 params from tensor shapes (models.md 1.2): widths from the embedders, head dim from
// the QK-norm scales, depths by counting blocks, guidance_embed from guidance_in's presence.
#include "models/arch/shape_index.h"

namespace ditrun::arch::detail {

Params detect_flux(const ShapeIndex& t, std::vector<std::string>& assumed) {
  FluxParams p;
  p.hidden_size = t.inner("img_in.weight", 1);
  p.in_channels = t.inner("img_in.weight", 0);
  p.out_channels = t.inner("final_layer.linear.weight", 1);
  p.vec_in_dim = t.inner("vector_in.in_layer.weight", 0);
  p.context_in_dim = t.inner("txt_in.weight", 0);
  p.depth = t.count_blocks("double_blocks.");
  p.depth_single_blocks = t.count_blocks("single_blocks.");
  p.guidance_embed = t.has("guidance_in.in_layer.weight");
  if (p.depth == 0 && p.depth_single_blocks == 0) t.fail_detect("checkpoint has no double_blocks or single_blocks");

  const int64_t h = p.hidden_size;
  int64_t head_dim = 0, mlp = 0;
  if (p.depth > 0) {
    head_dim = t.numel("double_blocks.0.img_attn.norm.query_norm.scale");
    mlp = t.inner("double_blocks.0.img_mlp.0.weight", 1);
    p.qkv_bias = t.has("double_blocks.0.img_attn.qkv.bias");
  } else {
    head_dim = t.numel("single_blocks.0.norm.query_norm.scale");
    mlp = t.inner("single_blocks.0.linear1.weight", 1) - 3 * h;  // rows are [q | k | v | mlp_in]
  }
  if (head_dim <= 0 || h % head_dim != 0)
    t.fail_detect(fmt::format("query_norm.scale has {} elements, which does not divide hidden size {}", head_dim, h));
  p.num_heads = h / head_dim;
  if (mlp <= 0) t.fail_detect(fmt::format("MLP width {} is not positive", mlp));
  p.mlp_ratio = static_cast<double>(mlp) / static_cast<double>(h);

  // Released models use D = 128 with axes [16, 56, 56]; for other head dims the split is a guess.
  p.axes_dim = guess_rope_axes(head_dim);
  if (head_dim != 128) assumed.emplace_back("axes_dim");
  return p;
}

}  // namespace ditrun::arch::detail
