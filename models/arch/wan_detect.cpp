// Wan 2.1/2.2 params from tensor shapes (models.md 2.2, 2.6, and ComfyUI's detection keys):
// model_type from the image branch (img_emb, emb_pos) and the 48-channel 5B latent.
#include "models/arch/shape_index.h"

namespace ditrun::arch::detail {

namespace {

// Wan's head dim is 128 in every release; the head count is not in the tensors (q/k/v are
// [d, d] and the QK RMSNorm spans all of d). For widths 128 does not divide (small test
// models), the fewest heads giving an even head dim of at most 64.
int64_t guess_heads(int64_t dim) {
  if (dim % 128 == 0) return dim / 128;
  for (int64_t h = 1; h <= dim; ++h)
    if (dim % h == 0 && (dim / h) % 2 == 0 && dim / h <= 64) return h;
  return 1;
}

}  // namespace

Params detect_wan(const ShapeIndex& t, std::vector<std::string>& assumed) {
  WanParams p;
  p.dim = t.numel("patch_embedding.bias");
  const auto& pe = t.shape("patch_embedding.weight");  // [dim, in_dim, pt, ph, pw]
  if (pe.size() == 5) {
    p.patch_size = {pe[2], pe[3], pe[4]};
  } else {
    assumed.emplace_back("patch_size");
  }
  const int64_t patch = p.patch_size[0] * p.patch_size[1] * p.patch_size[2];
  const int64_t pe_numel = t.numel("patch_embedding.weight");
  if (pe_numel % (p.dim * patch) != 0)
    t.fail_detect(fmt::format("patch_embedding.weight {} does not fit dim {} and patch {}x{}x{}",
                              formats::shape_string(pe), p.dim, p.patch_size[0], p.patch_size[1], p.patch_size[2]));
  p.in_dim = pe_numel / (p.dim * patch);
  p.text_dim = t.inner("text_embedding.0.weight", 0);
  p.freq_dim = t.inner("time_embedding.0.weight", 0);
  p.num_layers = t.count_blocks("blocks.");
  if (p.num_layers == 0) t.fail_detect("checkpoint has no blocks.N tensors");
  p.ffn_dim = t.inner("blocks.0.ffn.0.weight", 1);
  p.qk_norm = t.has("blocks.0.self_attn.norm_q.weight");
  p.cross_attn_norm = t.has("blocks.0.norm3.weight");
  const int64_t head_rows = t.inner("head.head.weight", 1);
  if (head_rows % patch != 0)
    t.fail_detect(fmt::format("head.head.weight has {} rows, not a multiple of the patch volume {}", head_rows, patch));
  p.out_dim = head_rows / patch;

  if (t.has("img_emb.emb_pos")) p.model_type = "flf2v";
  else if (t.has("img_emb.proj.0.weight")) p.model_type = "i2v";
  else if (p.out_dim == 48) p.model_type = "ti2v";  // Wan2.2 VAE latent: the TI2V-5B model
  else p.model_type = "t2v";

  p.num_heads = guess_heads(p.dim);
  assumed.emplace_back("num_heads");
  p.text_len = 512;  // umT5 context padded to 512 in every release
  assumed.emplace_back("text_len");
  return p;
}

}  // namespace ditrun::arch::detail
