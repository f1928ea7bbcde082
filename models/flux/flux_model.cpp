#include "models/flux/flux_model.h"

#include <algorithm>

#include "models/common/adaln.h"
#include "models/common/double_stream_cost.h"
#include "models/common/model_io.h"
#include "models/common/rope_table.h"
#include "models/common/timestep_embedding.h"
#include "models/flux/flux_blocks.h"
#include "runtime/core/error.h"

namespace ditrun::models::flux {
namespace {

using runtime::ActivationState;
using runtime::Backend;
using runtime::HostTensors;
using runtime::WeightLookup;

constexpr int64_t kTimeEmbedding = 256;
constexpr float kTimeFactor = 1000.0f;  // Flux receives σ and embeds 1000·σ (and 1000·guidance)

class FluxModel final : public runtime::Model {
 public:
  explicit FluxModel(const arch::FluxParams& p) : params_(p), dims_(p) {
    for (int i = 0; i < p.depth; ++i) blocks_.push_back(make_double_block(i, dims_));
    for (int i = 0; i < p.depth_single_blocks; ++i) blocks_.push_back(make_single_block(i, dims_));
  }

  const std::vector<std::unique_ptr<runtime::Block>>& blocks() const override { return blocks_; }

  std::vector<std::string> prologue_weight_names() const override {
    std::vector<std::string> names = {"img_in.weight", "img_in.bias", "txt_in.weight", "txt_in.bias"};
    for (const char* e : {"time_in", "vector_in", "guidance_in"}) {
      if (std::string_view(e) == "guidance_in" && !params_.guidance_embed) continue;
      for (const char* l : {".in_layer.weight", ".in_layer.bias", ".out_layer.weight", ".out_layer.bias"})
        names.push_back(std::string(e) + l);
    }
    return names;
  }

  std::vector<std::string> epilogue_weight_names() const override {
    return {"final_layer.adaLN_modulation.1.weight", "final_layer.adaLN_modulation.1.bias",
            "final_layer.linear.weight", "final_layer.linear.bias"};
  }

  runtime::TokenCounts tokens(const HostTensors& in) const override {
    auto dim1 = [&](const char* n) { auto* t = optional_input(in, n); return t && t->shape.size() == 3 ? t->shape[1] : 0; };
    return {dim1("img"), dim1("txt")};
  }

  double prologue_flops(const runtime::TokenCounts& t) const override {
    const int64_t h = dims_.hidden;
    const double embedders = linear_flops(1, h, kTimeEmbedding) * (params_.guidance_embed ? 2 : 1) +
                             linear_flops(1, h, params_.vec_in_dim) + linear_flops(1, h, h) * (params_.guidance_embed ? 3 : 2);
    return linear_flops(t.image, h, params_.in_channels) + linear_flops(t.text, h, params_.context_in_dim) + embedders;
  }

  double epilogue_flops(const runtime::TokenCounts& t) const override {
    return linear_flops(1, 2 * dims_.hidden, dims_.hidden) + linear_flops(t.image, params_.out_channels, dims_.hidden);
  }

  // State between blocks: x [B, L, h], vec [B, 1, h], pe [B, L, head_dim].
  int64_t state_elements(const runtime::TokenCounts& t, int64_t batch) const override {
    const int64_t L = t.image + t.text;
    return batch * (L * dims_.hidden + dims_.hidden + L * dims_.head_dim);
  }

  // The joint sequence is text then image, in x and in its RoPE table: image tokens split over
  // sequence-parallel ranks, the text rows stay whole on every rank (they attend with every
  // image token), and img_len counts the rows a rank holds.
  runtime::StateLayout state_layout(const ActivationState& state) const override {
    return joint_sequence_layout(state, {"x", "pe"}, {"x", "vec", "pe"});
  }

  // The largest of: the prologue, any block on top of the state, the epilogue on top of it.
  int64_t activation_elements(const runtime::TokenCounts& t, int64_t batch) const override {
    const int64_t Lt = t.text, Li = t.image, L = Lt + Li, h = dims_.hidden, B = batch;
    const int64_t state = state_elements(t, B);
    // prologue(): x [B, L, h] lives throughout; next to it, one at a time, the img or txt
    // upload, an MLPEmbedder (input, hidden, out) beside vec, or at the end vec, v and pe.
    const int64_t embedder = 3 * h + std::max<int64_t>(kTimeEmbedding, params_.vec_in_dim);
    const int64_t prologue =
        B * L * h + B * std::max({Li * params_.in_channels, Lt * params_.context_in_dim, embedder,
                                  2 * h + L * dims_.head_dim});
    int64_t blocks = 0;
    if (params_.depth > 0) blocks = std::max(blocks, double_block_temporaries(dims_, Lt, Li, B));
    if (params_.depth_single_blocks > 0) blocks = std::max(blocks, single_block_temporaries(dims_, L, B));
    // epilogue(): vec_act [B, 1, h], mod [B, 1, 2h], normed [B, L_img, h], out [B, L_img, out_channels].
    const int64_t epilogue = B * (3 * h + Li * (h + params_.out_channels));
    return std::max(prologue, state + std::max(blocks, epilogue));
  }

  ActivationState prologue(Backend& be, const WeightLookup& w, const HostTensors& in) const override {
    const HostTensor& img = require_input(in, "img", {-1, -1, params_.in_channels}, "[B, L_img, in_channels]");
    const int64_t B = img.shape[0], Li = img.shape[1];
    const HostTensor& txt = require_input(in, "txt", {B, -1, params_.context_in_dim}, "[B, L_txt, context_in_dim]");
    const int64_t Lt = txt.shape[1], L = Lt + Li, h = dims_.hidden;
    const HostTensor& img_ids = require_input(in, "img_ids", {B, Li, 3}, "[B, L_img, 3]");
    const HostTensor& txt_ids = require_input(in, "txt_ids", {B, Lt, 3}, "[B, L_txt, 3]");
    const HostTensor& y = require_input(in, "y", {B, params_.vec_in_dim}, "[B, vec_in_dim]");
    const HostTensor& timesteps = require_input(in, "timesteps", {B}, "[B] (sigma)");
    const HostTensor* guidance = nullptr;
    if (params_.guidance_embed) guidance = &require_input(in, "guidance", {B}, "[B] (embedded guidance)");
    if (Li == 0) fail("model input 'img' has no tokens");

    ActivationState state;
    state.set_int("txt_len", Lt);
    state.set_int("img_len", Li);

    // The joint sequence, text first; each stream's input projection writes its rows.
    Tensor x = be.empty({B, L, h});
    Tensor img_rows = x.slice_rows(Lt, Li), txt_rows = x.slice_rows(0, Lt);
    be.linear(to_backend(be, img.data, {B, Li, params_.in_channels}), w.at("img_in.weight"), &w.at("img_in.bias"),
              img_rows);
    if (Lt > 0)
      be.linear(to_backend(be, txt.data, {B, Lt, params_.context_in_dim}), w.at("txt_in.weight"),
                &w.at("txt_in.bias"), txt_rows);
    state.set("x", x);

    // vec = time_in(emb(1000σ)) [+ guidance_in(emb(1000g))] + vector_in(y)
    Tensor vec = embed(be, w, "time_in", scaled_embedding(timesteps), B, kTimeEmbedding);
    if (guidance) {
      Tensor g = embed(be, w, "guidance_in", scaled_embedding(*guidance), B, kTimeEmbedding);
      be.add(vec, g, vec);
    }
    Tensor v = embed(be, w, "vector_in", y.data, B, params_.vec_in_dim);
    be.add(vec, v, vec);
    state.set("vec", vec);

    // RoPE over ids = cat(txt_ids, img_ids) per batch item.
    std::vector<float> ids;
    ids.reserve(size_t(B * L * 3));
    for (int64_t b = 0; b < B; ++b) {
      ids.insert(ids.end(), txt_ids.data.begin() + b * Lt * 3, txt_ids.data.begin() + (b + 1) * Lt * 3);
      ids.insert(ids.end(), img_ids.data.begin() + b * Li * 3, img_ids.data.begin() + (b + 1) * Li * 3);
    }
    const std::vector<float> table = rope_table(ids, params_.axes_dim, params_.theta);
    state.set("pe", to_backend(be, table, {B, L, dims_.head_dim}));
    return state;
  }

  HostTensor epilogue(Backend& be, const WeightLookup& w, ActivationState& state) const override {
    const Tensor& x = state.at("x");
    const int64_t Lt = state.integer("txt_len"), Li = state.integer("img_len");
    // shift, scale = adaLN_modulation(SiLU(vec)).chunk(2): shift first.
    const FinalLayer layer{"final_layer.adaLN_modulation.1", "final_layer.linear", 0, 1, kNormEps};
    return to_host(be, final_layer(be, w, layer, state.at("vec"), x.slice_rows(Lt, Li), params_.out_channels));
  }

 private:
  // BFL timestep_embedding: t = 1000·t in f32, then f32 arguments.
  static std::vector<float> scaled_embedding(const HostTensor& values) {
    std::vector<float> scaled(values.data.size());
    for (size_t i = 0; i < scaled.size(); ++i) scaled[i] = kTimeFactor * values.data[i];
    return timestep_embedding(scaled, kTimeEmbedding, EmbeddingArithmetic::Float32Arguments);
  }

  // MLPEmbedder: out_layer(SiLU(in_layer(x))), x [B, width] → [B, 1, h].
  Tensor embed(Backend& be, const WeightLookup& w, const std::string& prefix, std::span<const float> x, int64_t B,
               int64_t width) const {
    return mlp_embed(be, w, prefix + ".in_layer", prefix + ".out_layer", x, B, width, dims_.hidden);
  }

  arch::FluxParams params_;
  Dims dims_;
  std::vector<std::unique_ptr<runtime::Block>> blocks_;
};

}  // namespace

std::unique_ptr<runtime::Model> make_flux_model(const arch::FluxParams& params) {
  return std::make_unique<FluxModel>(params);
}

}  // namespace ditrun::models::flux
