#include "models/qwen_image/qwen_image_model.h"

#include <algorithm>
#include <string>

#include "models/common/double_stream_cost.h"
#include "models/common/adaln.h"
#include "models/common/model_io.h"
#include "models/common/rope_table.h"
#include "models/common/timestep_embedding.h"
#include "runtime/core/error.h"
#include "runtime/exec/sequence_parallel.h"

namespace ditrun::models::qwen_image {
namespace {

using runtime::ActivationState;
using runtime::Backend;
using runtime::HostTensors;
using runtime::WeightLookup;

constexpr float kNormEps = 1e-6f;  // every LayerNorm and RMSNorm of the model
constexpr int64_t kTimeEmbedding = 256;
constexpr float kTimeScale = 1000.0f;  // Timesteps(scale=1000): the model receives σ

// `{img,txt}_mod.1(SiLU(temb))` chunks, in order.
enum Chunk { kShift1, kScale1, kGate1, kShift2, kScale2, kGate2 };

struct Dims {
  int64_t hidden, heads, head_dim, mlp;
  explicit Dims(const arch::QwenImageParams& p)
      : hidden(p.num_attention_heads * p.attention_head_dim), heads(p.num_attention_heads),
        head_dim(p.attention_head_dim), mlp(4 * hidden) {}
};

// The names of one stream's weights in a block: the image stream's (diffusers' "sample"
// projections) or the text stream's ("added" projections).
struct StreamNames {
  const char* mod;
  const char* q;
  const char* k;
  const char* v;
  const char* norm_q;
  const char* norm_k;
  const char* out;
  const char* mlp;
};
constexpr StreamNames kText{"txt_mod.1", "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj",
                            "attn.norm_added_q", "attn.norm_added_k", "attn.to_add_out", "txt_mlp"};
constexpr StreamNames kImage{"img_mod.1", "attn.to_q", "attn.to_k", "attn.to_v",
                             "attn.norm_q", "attn.norm_k", "attn.to_out.0", "img_mlp"};
constexpr const StreamNames* kStreams[2] = {&kText, &kImage};  // the joint sequence's order

// Flux's double block's cost: separate q, k, v projections cost what a fused one does.
class TransformerBlock final : public DoubleStreamBlock {
 public:
  TransformerBlock(int index, const Dims& dims)
      : DoubleStreamBlock({dims.hidden, dims.head_dim, dims.mlp}), name_("transformer_blocks." + std::to_string(index)),
        dims_(dims) {}

  const std::string& name() const override { return name_; }

  std::vector<std::string> weight_names() const override {
    std::vector<std::string> names;
    for (const StreamNames* s : kStreams) {
      for (const char* linear : {s->mod, s->q, s->k, s->v, s->out})
        for (const char* p : {".weight", ".bias"}) names.push_back(name_ + "." + linear + p);
      names.push_back(name_ + "." + s->norm_q + ".weight");
      names.push_back(name_ + "." + s->norm_k + ".weight");
      for (const char* p : {".net.0.proj.weight", ".net.0.proj.bias", ".net.2.weight", ".net.2.bias"})
        names.push_back(name_ + "." + s->mlp + p);
    }
    return names;
  }

  void forward(Backend& be, const WeightLookup& w, ActivationState& state) const override {
    const Tensor& x = state.at("x");
    const int64_t B = x.dim(0), Lt = state.integer("txt_len"), Li = state.integer("img_len"), L = Lt + Li;
    const int64_t h = dims_.hidden;
    Tensor temb_act = be.empty(state.at("temb").shape());
    be.silu(state.at("temb"), temb_act);
    const Tensor mod[2] = {modulation(be, w, name_ + "." + kText.mod, temb_act, 6),
                           modulation(be, w, name_ + "." + kImage.mod, temb_act, 6)};

    // q | k | v of the joint sequence; each stream projects its own rows.
    Tensor qkv = be.empty({B, L, 3 * h});
    Tensor rows[2] = {x.slice_rows(0, Lt), x.slice_rows(Lt, Li)};
    for (int s = 0; s < 2; ++s) {
      if (rows[s].dim(1) == 0) continue;
      const StreamNames& n = *kStreams[s];
      Tensor normed = be.empty(rows[s].shape());
      be.layer_norm_modulate(rows[s], mod[s], kShift1, kScale1, kNormEps, normed);
      Tensor stream_qkv = qkv.slice_rows(s == 0 ? 0 : Lt, rows[s].dim(1));
      const char* projections[3] = {n.q, n.k, n.v};
      for (int i = 0; i < 3; ++i) {
        Tensor part = stream_qkv.slice_cols(i * h, h);
        be.linear(normed, weight(w, projections[i], ".weight"), &weight(w, projections[i], ".bias"), part);
      }
      Tensor q = stream_qkv.slice_cols(0, h), k = stream_qkv.slice_cols(h, h);
      be.rms_norm(q, q, weight(w, n.norm_q, ".weight"), dims_.head_dim, kNormEps);
      be.rms_norm(k, k, weight(w, n.norm_k, ".weight"), dims_.head_dim, kNormEps);
    }
    Tensor q = qkv.slice_cols(0, h), k = qkv.slice_cols(h, h), v = qkv.slice_cols(2 * h, h);
    be.rope(q, state.at("pe"), dims_.heads);
    be.rope(k, state.at("pe"), dims_.heads);
    Tensor attn = be.empty({B, L, h});
    runtime::self_attention(be, state, q, k, v, attn, dims_.heads);  // the text mask is the state's

    for (int s = 0; s < 2; ++s) {
      Tensor& stream = rows[s];
      const int64_t n = stream.dim(1);
      if (n == 0) continue;
      const StreamNames& names = *kStreams[s];
      Tensor proj = be.empty({B, n, h});
      be.linear(attn.slice_rows(s == 0 ? 0 : Lt, n), weight(w, names.out, ".weight"), &weight(w, names.out, ".bias"),
                proj);
      be.gated_add(stream, proj, mod[s], kGate1);
      Tensor normed = be.empty({B, n, h});
      be.layer_norm_modulate(stream, mod[s], kShift2, kScale2, kNormEps, normed);
      Tensor hidden = be.empty({B, n, dims_.mlp});
      be.linear_gelu(normed, weight(w, names.mlp, ".net.0.proj.weight"), &weight(w, names.mlp, ".net.0.proj.bias"),
                     hidden);
      be.linear(hidden, weight(w, names.mlp, ".net.2.weight"), &weight(w, names.mlp, ".net.2.bias"), proj);
      be.gated_add(stream, proj, mod[s], kGate2);
    }
  }

  std::vector<std::pair<std::string, Tensor>> outputs(const ActivationState& state) const override {
    const Tensor& x = state.at("x");
    const int64_t Lt = state.integer("txt_len"), Li = state.integer("img_len");
    return {{name_ + ".out.img", x.slice_rows(Lt, Li)}, {name_ + ".out.txt", x.slice_rows(0, Lt)}};
  }

  // What forward() holds at its peak: temb_act and the two modulations, qkv and attn over L
  // throughout; then either the masked attention's re-laid k and v (2 × [B, L, h]) or, for the
  // longer stream n, the MLP's proj, normed and hidden.
  static int64_t temporaries(const Dims& d, int64_t txt_len, int64_t img_len, int64_t batch) {
    const int64_t h = d.hidden, L = txt_len + img_len, n = std::max(txt_len, img_len);
    return batch * (13 * h + 4 * L * h + std::max(2 * L * h, n * (2 * h + d.mlp)));
  }

 private:
  const runtime::DeviceWeight& weight(const WeightLookup& w, const char* layer, const char* suffix) const {
    return w.at(name_ + "." + layer + suffix);
  }

  std::string name_;
  Dims dims_;
};

class QwenImageModel final : public runtime::Model {
 public:
  explicit QwenImageModel(const arch::QwenImageParams& p) : params_(p), dims_(p) {
    for (int64_t i = 0; i < p.num_layers; ++i) blocks_.push_back(std::make_unique<TransformerBlock>(int(i), dims_));
  }

  const std::vector<std::unique_ptr<runtime::Block>>& blocks() const override { return blocks_; }

  std::vector<std::string> prologue_weight_names() const override {
    return {"img_in.weight",
            "img_in.bias",
            "txt_norm.weight",
            "txt_in.weight",
            "txt_in.bias",
            "time_text_embed.timestep_embedder.linear_1.weight",
            "time_text_embed.timestep_embedder.linear_1.bias",
            "time_text_embed.timestep_embedder.linear_2.weight",
            "time_text_embed.timestep_embedder.linear_2.bias"};
  }

  std::vector<std::string> epilogue_weight_names() const override {
    return {"norm_out.linear.weight", "norm_out.linear.bias", "proj_out.weight", "proj_out.bias"};
  }

  runtime::TokenCounts tokens(const HostTensors& in) const override {
    auto dim1 = [&](const char* n) { auto* t = optional_input(in, n); return t && t->shape.size() == 3 ? t->shape[1] : 0; };
    return {dim1("img"), dim1("txt")};
  }

  double prologue_flops(const runtime::TokenCounts& t) const override {
    const int64_t h = dims_.hidden;
    return linear_flops(t.image, h, params_.in_channels) + linear_flops(t.text, h, params_.joint_attention_dim) +
           linear_flops(1, h, kTimeEmbedding) + linear_flops(1, h, h);
  }

  double epilogue_flops(const runtime::TokenCounts& t) const override {
    return linear_flops(1, 2 * dims_.hidden, dims_.hidden) + linear_flops(t.image, out_features(), dims_.hidden);
  }

  // State between blocks: x [B, L, h], temb [B, 1, h], pe [1, L, head_dim] (one table: every
  // item has the same grid and text length).
  int64_t state_elements(const runtime::TokenCounts& t, int64_t batch) const override {
    const int64_t L = t.image + t.text;
    return batch * (L * dims_.hidden + dims_.hidden) + L * dims_.head_dim;
  }

  // Text then image, in x and in the RoPE table: image tokens split over sequence-parallel
  // ranks, the text rows whole on every rank. The table is one for the batch, so CFG
  // parallelism splits x and temb only.
  runtime::StateLayout state_layout(const ActivationState& state) const override {
    return joint_sequence_layout(state, {"x", "pe"}, {"x", "temb"});
  }

  int64_t activation_elements(const runtime::TokenCounts& t, int64_t batch) const override {
    const int64_t Lt = t.text, Li = t.image, L = Lt + Li, h = dims_.hidden, B = batch;
    // prologue(): x [B, L, h] throughout; beside it the image or text upload (the text is
    // normed in place), the timestep MLP (input, hidden, out), then temb and the table.
    const int64_t prologue =
        B * L * h + std::max({B * Li * params_.in_channels, B * Lt * params_.joint_attention_dim,
                              B * (kTimeEmbedding + 2 * h), B * h + L * dims_.head_dim});
    const int64_t block = TransformerBlock::temporaries(dims_, Lt, Li, B);
    // epilogue(): temb_act [B, 1, h], mod [B, 1, 2h], normed [B, L_img, h], out [B, L_img, 4·out].
    const int64_t epilogue = B * (3 * h + Li * (h + out_features()));
    return std::max(prologue, state_elements(t, B) + std::max(block, epilogue));
  }

  ActivationState prologue(Backend& be, const WeightLookup& w, const HostTensors& in) const override {
    const HostTensor& img = require_input(in, "img", {-1, -1, params_.in_channels}, "[B, L_img, in_channels]");
    const int64_t B = img.shape[0], Li = img.shape[1], J = params_.joint_attention_dim, h = dims_.hidden;
    const HostTensor& txt = require_input(in, "txt", {B, -1, J}, "[B, L_txt, joint_attention_dim]");
    const int64_t Lt = txt.shape[1], L = Lt + Li;
    const HostTensor& timesteps = require_input(in, "timesteps", {B}, "[B] (sigma)");
    const HostTensor& shapes = require_input(in, "img_shapes", {B, 3}, "[B, 3] (frames, rows, cols of the token grid)");
    if (Li == 0) fail("model input 'img' has no tokens");
    const int64_t frames = int64_t(shapes.data[0]), rows = int64_t(shapes.data[1]), cols = int64_t(shapes.data[2]);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t a = 0; a < 3; ++a)
        if (shapes.data[size_t(b * 3 + a)] != shapes.data[size_t(a)])
          fail("model input 'img_shapes': item {} has another grid than item 0 (a batch shares one grid)", b);
    if (frames < 1 || rows < 1 || cols < 1 || frames * rows * cols != Li)
      fail("model input 'img_shapes': a {}x{}x{} grid does not hold the {} image tokens of 'img'", frames, rows, cols, Li);

    ActivationState state;
    state.set_int("txt_len", Lt);
    state.set_int("img_len", Li);
    state.set_prefix_mask(Lt, text_keys(in, B, Lt));

    Tensor x = be.empty({B, L, h});
    Tensor img_rows = x.slice_rows(Lt, Li);
    be.linear(to_backend(be, img.data, {B, Li, params_.in_channels}), w.at("img_in.weight"), &w.at("img_in.bias"),
              img_rows);
    if (Lt > 0) {
      Tensor text = to_backend(be, txt.data, {B, Lt, J});
      be.rms_norm(text, text, w.at("txt_norm.weight"), J, kNormEps);
      Tensor txt_rows = x.slice_rows(0, Lt);
      be.linear(text, w.at("txt_in.weight"), &w.at("txt_in.bias"), txt_rows);
    }
    state.set("x", x);
    state.set("temb", mlp_embed(be, w, "time_text_embed.timestep_embedder.linear_1",
                                "time_text_embed.timestep_embedder.linear_2",
                                scaled_timestep_embedding(timesteps.data, kTimeEmbedding, kTimeScale), B,
                                kTimeEmbedding, h));
    const std::vector<float> table =
        rope_table_f32(qwen_rope_positions(frames, rows, cols, Lt), params_.axes_dims_rope, params_.theta);
    state.set("pe", to_backend(be, table, {1, L, dims_.head_dim}));
    return state;
  }

  HostTensor epilogue(Backend& be, const WeightLookup& w, ActivationState& state) const override {
    const Tensor& x = state.at("x");
    const int64_t Lt = state.integer("txt_len"), Li = state.integer("img_len");
    const FinalLayer layer{"norm_out.linear", "proj_out", /*shift*/ 1, /*scale*/ 0, kNormEps};  // scale, then shift
    return to_host(be, final_layer(be, w, layer, state.at("temb"), x.slice_rows(Lt, Li), out_features()));
  }

 private:
  int64_t out_features() const { return params_.patch_size * params_.patch_size * params_.out_channels; }

  // Per item the real text tokens of `txt_mask` (all Lt without one). A mask must mark the
  // real tokens first and the padding after them, as the pipelines pad.
  static std::vector<int64_t> text_keys(const HostTensors& in, int64_t B, int64_t Lt) {
    std::vector<int64_t> keys(size_t(B), Lt);
    const HostTensor* mask = optional_input(in, "txt_mask");
    if (!mask) return keys;
    if (!shape_fits(mask->shape, {B, Lt}))
      fail("model input 'txt_mask': shape {} should be [{}, {}] (one flag per text token)", shape_string(mask->shape), B, Lt);
    for (int64_t b = 0; b < B; ++b) {
      int64_t real = 0;
      while (real < Lt && mask->data[size_t(b * Lt + real)] != 0.0f) ++real;
      for (int64_t j = real; j < Lt; ++j)
        if (mask->data[size_t(b * Lt + j)] != 0.0f)
          fail("model input 'txt_mask': item {} has a real token at {} after padding at {}; ditrun takes masks whose "
               "real tokens come first",
               b, j, real);
      keys[size_t(b)] = real;
    }
    return keys;
  }

  arch::QwenImageParams params_;
  Dims dims_;
  std::vector<std::unique_ptr<runtime::Block>> blocks_;
};

}  // namespace

std::vector<float> qwen_rope_positions(int64_t frames, int64_t rows, int64_t cols, int64_t text) {
  std::vector<float> pos;
  pos.reserve(size_t((text + frames * rows * cols) * 3));
  const int64_t first_text = std::max(rows / 2, cols / 2);
  for (int64_t k = 0; k < text; ++k) pos.insert(pos.end(), 3, float(first_text + k));
  const int64_t top = rows - rows / 2, left = cols - cols / 2;  // ⌈rows/2⌉, ⌈cols/2⌉
  for (int64_t f = 0; f < frames; ++f)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) pos.insert(pos.end(), {float(f), float(r - top), float(c - left)});
  return pos;
}

std::unique_ptr<runtime::Model> make_qwen_image_model(const arch::QwenImageParams& params) {
  const int64_t axes = params.axes_dims_rope.size() == 3
                           ? params.axes_dims_rope[0] + params.axes_dims_rope[1] + params.axes_dims_rope[2]
                           : -1;
  if (axes != params.attention_head_dim)
    fail("Qwen-Image axes_dims_rope must be 3 widths summing to attention_head_dim {}", params.attention_head_dim);
  if (params.patch_size != 2) fail("Qwen-Image patch_size {}: ditrun runs 2 (every release)", params.patch_size);
  return std::make_unique<QwenImageModel>(params);
}

}  // namespace ditrun::models::qwen_image
