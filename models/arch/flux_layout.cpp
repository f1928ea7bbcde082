// FLUX.1 tensors (models.md 1.2) in BFL's module order, which is the order of the reference
// files: embedders, double blocks (img stream then txt), single blocks, final layer (linear
// before adaLN_modulation because LastLayer registers it first).
#include "models/arch/layout_builder.h"

namespace ditrun::arch::detail {

std::vector<TensorSpec> flux_layout(const FluxParams& p) {
  const int64_t h = p.hidden_size, d = h / p.num_heads, m = static_cast<int64_t>(h * p.mlp_ratio);
  constexpr int64_t kTimeFreq = 256;  // sinusoidal embedding width (models.md 0.2)
  LayoutBuilder b;
  b.linear("img_in", h, p.in_channels);
  b.linear("time_in.in_layer", h, kTimeFreq);
  b.linear("time_in.out_layer", h, h);
  b.linear("vector_in.in_layer", h, p.vec_in_dim);
  b.linear("vector_in.out_layer", h, h);
  if (p.guidance_embed) {
    b.linear("guidance_in.in_layer", h, kTimeFreq);
    b.linear("guidance_in.out_layer", h, h);
  }
  b.linear("txt_in", h, p.context_in_dim);

  for (int64_t i = 0; i < p.depth; ++i) {
    for (const char* s : {"img", "txt"}) {
      const std::string pre = fmt::format("double_blocks.{}.{}", i, s);
      b.linear(pre + "_mod.lin", 6 * h, h);
      b.linear(pre + "_attn.qkv", 3 * h, h, p.qkv_bias);
      b.norm(pre + "_attn.norm.query_norm.scale", d);
      b.norm(pre + "_attn.norm.key_norm.scale", d);
      b.linear(pre + "_attn.proj", h, h);
      b.linear(pre + "_mlp.0", m, h);
      b.linear(pre + "_mlp.2", h, m);
    }
  }
  for (int64_t j = 0; j < p.depth_single_blocks; ++j) {
    const std::string pre = fmt::format("single_blocks.{}", j);
    b.linear(pre + ".linear1", 3 * h + m, h);  // rows [q | k | v | mlp_in]
    b.linear(pre + ".linear2", h, h + m);      // columns [attn_out | mlp_act]
    b.norm(pre + ".norm.query_norm.scale", d);
    b.norm(pre + ".norm.key_norm.scale", d);
    b.linear(pre + ".modulation.lin", 3 * h, h);
  }
  b.linear("final_layer.linear", p.out_channels, h);  // BFL LastLayer uses patch_size 1 on packed channels
  b.linear("final_layer.adaLN_modulation.1", 2 * h, h);
  return b.take();
}

}  // namespace ditrun::arch::detail
