#include "models/wan/wan_model.h"

#include <algorithm>

#include "models/common/model_io.h"
#include "models/common/patchify.h"
#include "models/common/rope_table.h"
#include "models/common/timestep_embedding.h"
#include "models/wan/wan_blocks.h"
#include "runtime/core/error.h"

namespace ditrun::models::wan {
namespace {

using runtime::ActivationState;
using runtime::Backend;
using runtime::HostTensors;
using runtime::WeightLookup;

class WanModel final : public runtime::Model {
 public:
  explicit WanModel(const arch::WanParams& p) : params_(p), dims_(p) {
    for (int i = 0; i < p.num_layers; ++i) blocks_.push_back(make_block(i, dims_));
  }

  const std::vector<std::unique_ptr<runtime::Block>>& blocks() const override { return blocks_; }

  std::vector<std::string> prologue_weight_names() const override {
    std::vector<std::string> names;
    for (const char* l : {"patch_embedding", "text_embedding.0", "text_embedding.2", "time_embedding.0",
                          "time_embedding.2", "time_projection.1"})
      for (const char* p : {".weight", ".bias"}) names.push_back(std::string(l) + p);
    if (dims_.image_context)
      for (const char* l : {"img_emb.proj.0", "img_emb.proj.1", "img_emb.proj.3", "img_emb.proj.4"})
        for (const char* p : {".weight", ".bias"}) names.push_back(std::string(l) + p);
    return names;
  }

  std::vector<std::string> epilogue_weight_names() const override {
    return {"head.modulation", "head.head.weight", "head.head.bias"};
  }

  runtime::TokenCounts tokens(const HostTensors& in) const override {
    const HostTensor* x = optional_input(in, "x");
    if (!x || x->shape.size() != 5) return {0, dims_.text_len};
    return {x->shape[2] * (x->shape[3] / 2) * (x->shape[4] / 2), dims_.text_len};
  }

  double prologue_flops(const runtime::TokenCounts& t) const override {
    const int64_t d = dims_.dim;
    return linear_flops(t.image, d, 4 * params_.in_dim) + linear_flops(t.text, d, params_.text_dim) +
           linear_flops(t.text, d, d) + linear_flops(1, d, params_.freq_dim) + linear_flops(1, d, d) +
           linear_flops(1, 6 * d, d) +
           (dims_.image_context ? linear_flops(kClipTokens, kClipWidth, kClipWidth) + linear_flops(kClipTokens, d, kClipWidth) : 0.0);
  }

  double epilogue_flops(const runtime::TokenCounts& t) const override {
    return linear_flops(t.image, 4 * params_.out_dim, dims_.dim);
  }

  // State between blocks: x [B, L, d], e [B, 1, d], e0 [B, 6, d], context [B, text_len, d],
  // pe [1, L, head_dim] (one table for the whole batch). TI2V's per-token timesteps make e
  // [B, L, d] and e0 [B, L, 6d]: the estimate of a TI2V model counts them so.
  int64_t state_elements(const runtime::TokenCounts& t, int64_t batch) const override {
    const int64_t d = dims_.dim, L = t.image;
    return batch * (L * d + 7 * d * (per_token_time() ? L : 1) + (dims_.text_len + image_tokens()) * d) +
           L * dims_.head_dim;
  }

  // Video tokens split over sequence-parallel ranks (x and its RoPE rows, and per-token time
  // embeddings); the text context stays whole on every rank, so cross-attention needs no
  // exchange. A CFG split gives each rank one batch item of everything batched (the RoPE
  // table is shared, [1, L, D]).
  runtime::StateLayout state_layout(const ActivationState& state) const override {
    runtime::StateLayout layout;
    layout.token_tensors = {"x", "pe"};
    if (state.at("e").dim(1) > 1) layout.token_tensors.insert(layout.token_tensors.end(), {"e", "e0"});
    layout.tokens = state.at("x").dim(1);
    layout.batch_tensors = {"x", "e", "e0", "context"};
    if (dims_.image_context) layout.batch_tensors.push_back("context_img");
    return layout;
  }

  // The largest of: the prologue, any block on top of the state, the epilogue on top of it.
  // The context is always padded to text_len, whatever t.text says.
  int64_t activation_elements(const runtime::TokenCounts& t, int64_t batch) const override {
    const int64_t d = dims_.dim, L = t.image, Lc = dims_.text_len, B = batch;
    // prologue(): tokens [B, L, d] throughout; beside it, in turn: the patch upload [B, L, 4 in_dim];
    // hidden [B, 1, d] and the time-embedding upload; hidden, e, e0 (8d per item) with the text
    // upload [B, Lc, text_dim] and text_hidden [B, Lc, d]; then text_hidden, text and pe [1, L, D].
    // Per-token timesteps (TI2V) multiply the time embeddings by the tokens.
    const int64_t T = per_token_time() ? L : 1;
    // The image branch (Wan 2.1 I2V): the CLIP upload, its norm and hidden layer [B, 257, 1280]
    // each, then the image context [B, 257, d], which stays.
    const int64_t clip = dims_.image_context ? B * kClipTokens * (3 * kClipWidth + d) : 0;
    const int64_t image_context = B * image_tokens() * d;
    const int64_t prologue =
        B * L * d + image_context +
        std::max({B * L * 4 * params_.in_dim, B * T * (d + params_.freq_dim),
                  B * (8 * d * T + Lc * d + Lc * params_.text_dim), B * (8 * d * T + 2 * Lc * d) + L * dims_.head_dim, clip});
    // epilogue(): mod [B, 2, d] (per token [B·L, 2, d]; + the dequantized [1, 2, d] table while
    // it is added), then normed [B, L, d] and out [B, L, 4 out_dim].
    const int64_t epilogue = B * T * 2 * d + std::max(2 * d, B * L * (d + 4 * params_.out_dim));
    const int64_t blocks = params_.num_layers > 0 ? block_temporaries(dims_, L, B, per_token_time()) : 0;
    return std::max(prologue, state_elements(t, B) + std::max(blocks, epilogue));
  }

  ActivationState prologue(Backend& be, const WeightLookup& w, const HostTensors& in) const override {
    const HostTensor& noisy = require_input(in, "x", {-1, params_.out_dim, -1, -1, -1}, "[B, out_dim, F, H, W]");
    const int64_t B = noisy.shape[0], F = noisy.shape[2], H = noisy.shape[3], W = noisy.shape[4], d = dims_.dim;
    if (H % 2 != 0 || W % 2 != 0 || F == 0 || H == 0 || W == 0)
      fail("model input 'x': latent {} needs non-empty frames and even height and width", shape_string(noisy.shape));
    // Image-to-video (Wan 2.2 I2V-A14B): the image conditioning `y` (mask and image latent, as
    // the official code builds it) joins the noisy latent along the channels, per batch item.
    const int64_t image_channels = params_.in_dim - params_.out_dim;
    HostTensor joined;
    if (image_channels > 0) {
      const HostTensor& y = require_input(in, "y", {B, image_channels, F, H, W}, "[B, in_dim - out_dim, F, H, W] (the image conditioning)");
      joined = concat_channels(noisy, y);
    }
    const HostTensor& x = image_channels > 0 ? joined : noisy;
    const int64_t L = F * (H / 2) * (W / 2);
    // The timestep: one per item, or (Wan 2.2 TI2V) one per token, frame-major as the tokens.
    const HostTensor* t_in = optional_input(in, "t");
    const bool token_t = t_in && t_in->shape == Shape{B, L};
    if (token_t && !per_token_time())
      fail("model input 't': per-token timesteps [B, L] are Wan 2.2 TI2V's; this model (model_type {}) takes [B]",
           params_.model_type);
    const HostTensor& t = token_t ? *t_in : require_input(in, "t", {B}, per_token_time() ? "[B] or [B, L] (per token)" : "[B] (1000·sigma)");
    const int64_t T = token_t ? L : 1;  // time rows per item
    const HostTensor& context = require_input(in, "context", {B, -1, params_.text_dim}, "[B, L, text_dim]");
    const int64_t Lc = context.shape[1];
    if (Lc > dims_.text_len)
      fail("model input 'context': {} tokens, the model takes at most text_len = {}", Lc, dims_.text_len);

    ActivationState state;
    state.set_int("frames", F);
    state.set_int("height", H);
    state.set_int("width", W);

    // Patch embedding: the (1, 2, 2) Conv3d with stride = kernel is a GEMM over patches.
    const HostTensor patches = patchify_2x2(x, PatchOrder::ChannelMajor);
    Tensor tokens = be.empty({B, L, d});
    be.linear(to_backend(be, patches.data, {B, L, 4 * params_.in_dim}), w.at("patch_embedding.weight"),
              &w.at("patch_embedding.bias"), tokens);
    state.set("x", tokens);

    // e = time_embedding(emb(t)); e0 = time_projection(e) as [B, 6, d] (per token: e [B, L, d]
    // and e0 [B, L, 6d], which the blocks read as [B·L, 6, d]).
    const std::vector<float> emb = timestep_embedding(t.data, params_.freq_dim, EmbeddingArithmetic::Float64);
    Tensor hidden = be.empty({B, T, d});
    be.linear(to_backend(be, emb, {B, T, params_.freq_dim}), w.at("time_embedding.0.weight"),
              &w.at("time_embedding.0.bias"), hidden);
    be.silu(hidden, hidden);
    Tensor e = be.empty({B, T, d});
    be.linear(hidden, w.at("time_embedding.2.weight"), &w.at("time_embedding.2.bias"), e);
    be.silu(e, hidden);
    Tensor e0 = be.empty({B, T, 6 * d});
    be.linear(hidden, w.at("time_projection.1.weight"), &w.at("time_projection.1.bias"), e0);
    state.set("e", e);
    state.set("e0", token_t ? e0 : e0.view({B, 6, d}));

    // Text: zero-padded to text_len, then Linear → GELU(tanh) → Linear.
    std::vector<float> padded(size_t(B * dims_.text_len * params_.text_dim), 0.0f);
    for (int64_t b = 0; b < B; ++b)
      std::copy_n(context.data.begin() + b * Lc * params_.text_dim, Lc * params_.text_dim,
                  padded.begin() + b * dims_.text_len * params_.text_dim);
    Tensor text_hidden = be.empty({B, dims_.text_len, d});
    be.linear_gelu(to_backend(be, padded, {B, dims_.text_len, params_.text_dim}), w.at("text_embedding.0.weight"),
                   &w.at("text_embedding.0.bias"), text_hidden);
    Tensor text = be.empty({B, dims_.text_len, d});
    be.linear(text_hidden, w.at("text_embedding.2.weight"), &w.at("text_embedding.2.bias"), text);
    state.set("context", text);
    if (dims_.image_context) state.set("context_img", image_context(be, w, in, B));

    // 3-D RoPE: head pairs split [D − 4⌊D/6⌋, 2⌊D/6⌋, 2⌊D/6⌋] over (frame, row, col).
    const int64_t D = dims_.head_dim, sixth = D / 6;
    const std::vector<int64_t> axes = {D - 4 * sixth, 2 * sixth, 2 * sixth};
    const std::vector<float> table = rope_table(grid_positions(F, H / 2, W / 2), axes, 10000.0);
    state.set("pe", to_backend(be, table, {1, L, D}));
    return state;
  }

  HostTensor epilogue(Backend& be, const WeightLookup& w, ActivationState& state) const override {
    const Tensor& x = state.at("x");
    const int64_t B = x.dim(0), L = x.dim(1), d = dims_.dim;
    // shift, scale = head.modulation + e (the raw time embedding, broadcast over both rows);
    // with per-token time every token is an item of its own ([B·L, 2, d]).
    const Tensor& e = state.at("e");
    const bool per_token = e.dim(1) > 1;
    const int64_t items = per_token ? B * L : B;
    Tensor mod = be.empty({items, 2, d});
    Tensor shift_row = mod.slice_rows(0, 1), scale_row = mod.slice_rows(1, 1);
    const Tensor e_items = e.view({items, 1, d});
    be.copy(e_items, shift_row);
    be.copy(e_items, scale_row);
    be.add(mod, be.dequantize(w.at("head.modulation"), {1, 2, d}), mod);
    Tensor normed = be.empty({B, L, d});
    Tensor normed_items = normed.view({items, per_token ? 1 : L, d});
    be.layer_norm_modulate(x.view({items, per_token ? 1 : L, d}), mod, 0, 1, dims_.eps, normed_items);
    Tensor out = be.empty({B, L, 4 * params_.out_dim});
    be.linear(normed, w.at("head.head.weight"), &w.at("head.head.bias"), out);
    const Shape latent{B, params_.out_dim, state.integer("frames"), state.integer("height"), state.integer("width")};
    return unpatchify_2x2(to_host(be, out), latent, PatchOrder::PatchMajor);
  }

 private:
  int64_t image_tokens() const { return dims_.image_context ? kClipTokens : 0; }

  // img_emb on the CLIP features [B, 257, 1280]: LayerNorm → Linear → GELU (exact) → Linear →
  // LayerNorm, both norms affine with torch's default eps 1e-5 (not the model's).
  Tensor image_context(Backend& be, const WeightLookup& w, const HostTensors& in, int64_t B) const {
    const HostTensor& clip = require_input(in, "clip_fea", {B, kClipTokens, kClipWidth},
                                           "[B, 257, 1280] (the image's CLIP ViT-H/14 penultimate features)");
    constexpr float kTorchEps = 1e-5f;
    Tensor features = to_backend(be, clip.data, {B, kClipTokens, kClipWidth});
    Tensor normed = be.empty({B, kClipTokens, kClipWidth}), hidden = be.empty({B, kClipTokens, kClipWidth});
    be.layer_norm(features, normed, kTorchEps, &w.at("img_emb.proj.0.weight"), &w.at("img_emb.proj.0.bias"));
    be.linear(normed, w.at("img_emb.proj.1.weight"), &w.at("img_emb.proj.1.bias"), hidden);
    be.gelu(hidden, hidden);
    Tensor projected = be.empty({B, kClipTokens, dims_.dim}), out = be.empty({B, kClipTokens, dims_.dim});
    be.linear(hidden, w.at("img_emb.proj.3.weight"), &w.at("img_emb.proj.3.bias"), projected);
    be.layer_norm(projected, out, kTorchEps, &w.at("img_emb.proj.4.weight"), &w.at("img_emb.proj.4.bias"));
    return out;
  }

  // Wan 2.2 TI2V takes a timestep per token (its first frame held at t = 0 for image-to-video).
  bool per_token_time() const { return params_.model_type == "ti2v"; }

  arch::WanParams params_;
  Dims dims_;
  std::vector<std::unique_ptr<runtime::Block>> blocks_;
};

}  // namespace

std::unique_ptr<runtime::Model> make_wan_model(const arch::WanParams& params) {
  if (params.model_type == "flf2v")
    fail("Wan model_type 'flf2v' (first and last frame) is not supported yet; t2v, i2v and ti2v models are");
  if (params.patch_size != std::vector<int64_t>{1, 2, 2})
    fail("Wan patch_size must be [1, 2, 2], the model has another");
  if (params.in_dim < params.out_dim)
    fail("Wan in_dim {} is below out_dim {}: the input holds the latent and, for image-to-video, its conditioning",
         params.in_dim, params.out_dim);
  return std::make_unique<WanModel>(params);
}

}  // namespace ditrun::models::wan
