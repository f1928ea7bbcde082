#include "models/sd3/sd3_model.h"

#include <algorithm>
#include <string>

#include "models/common/adaln.h"
#include "models/common/double_stream_cost.h"
#include "models/common/model_io.h"
#include "models/common/patchify.h"
#include "models/common/timestep_embedding.h"
#include "runtime/core/error.h"
#include "runtime/exec/sequence_parallel.h"

namespace ditrun::models::sd3 {
namespace {

using runtime::ActivationState;
using runtime::Backend;
using runtime::HostTensors;
using runtime::WeightLookup;

constexpr float kNormEps = 1e-6f;
constexpr int64_t kTimeEmbedding = 256;

// adaLN chunks, in the order of MMDiT-X's modulation: the 6 of every block, then attn2's 3.
enum Chunk { kShiftMsa, kScaleMsa, kGateMsa, kShiftMlp, kScaleMlp, kGateMlp, kShiftMsa2, kScaleMsa2, kGateMsa2 };

struct Dims {
  int64_t hidden, heads, head_dim, mlp;
  explicit Dims(const arch::SD3Params& p)
      : hidden(p.hidden_size), heads(p.num_heads), head_dim(p.hidden_size / p.num_heads),
        mlp(int64_t(double(p.hidden_size) * p.mlp_ratio)) {}
};

class JointBlock final : public runtime::Block {
 public:
  JointBlock(int index, const Dims& dims, bool last, bool dual, bool qk_norm)
      : name_("joint_blocks." + std::to_string(index)), dims_(dims), last_(last), dual_(dual), qk_norm_(qk_norm) {}

  const std::string& name() const override { return name_; }

  std::vector<std::string> weight_names() const override {
    std::vector<std::string> names;
    const auto attention = [&](const std::string& p, bool proj) {
      for (const char* s : {".qkv.weight", ".qkv.bias"}) names.push_back(p + s);
      if (proj)
        for (const char* s : {".proj.weight", ".proj.bias"}) names.push_back(p + s);
      if (qk_norm_)
        for (const char* s : {".ln_q.weight", ".ln_k.weight"}) names.push_back(p + s);
    };
    const auto rest = [&](const std::string& p, bool mlp) {
      if (mlp)
        for (const char* s : {".mlp.fc1.weight", ".mlp.fc1.bias", ".mlp.fc2.weight", ".mlp.fc2.bias"}) names.push_back(p + s);
      for (const char* s : {".adaLN_modulation.1.weight", ".adaLN_modulation.1.bias"}) names.push_back(p + s);
    };
    attention(name_ + ".context_block.attn", !last_);
    rest(name_ + ".context_block", !last_);
    attention(name_ + ".x_block.attn", true);
    if (dual_) attention(name_ + ".x_block.attn2", true);
    rest(name_ + ".x_block", true);
    return names;
  }

  double flops(const runtime::TokenCounts& t) const override {
    const int64_t h = dims_.hidden, m = dims_.mlp;
    const double full = linear_flops(1, 3 * h, h) + linear_flops(1, h, h) + 2 * linear_flops(1, m, h);
    const double text = last_ ? linear_flops(1, 3 * h, h) : full;
    const double image = full + (dual_ ? linear_flops(1, 3 * h, h) + linear_flops(1, h, h) : 0);
    return double(t.text) * text + double(t.image) * image + linear_flops(1, (last_ ? 2 : 6) * h, h) +
           linear_flops(1, (dual_ ? 9 : 6) * h, h) + attention_flops(t);
  }

  double attention_flops(const runtime::TokenCounts& t) const override {
    const int64_t L = t.image + t.text;
    return models::attention_flops(L, L, dims_.hidden) + (dual_ ? models::attention_flops(t.image, t.image, dims_.hidden) : 0);
  }

  // Per token: modulated norms, q/k RMS norms, gated residuals and the MLP's GELU, as Flux's
  // double block counts them (attn2 adds a modulated norm, q/k norms and a residual).
  double elementwise_elements(const runtime::TokenCounts& t) const override {
    const int64_t h = dims_.hidden, L = t.image + t.text;
    return double(L) * double(18 * h + 2 * dims_.mlp) + (dual_ ? double(t.image) * double(9 * h) : 0);
  }

  double self_attention_elements(const runtime::TokenCounts& t) const override {
    return 4.0 * double(t.image + t.text) * double(dims_.hidden);
  }

  void forward(Backend& be, const WeightLookup& w, ActivationState& state) const override {
    const Tensor& x = state.at("x");
    const int64_t B = x.dim(0), Lt = state.integer("txt_len"), Li = state.integer("img_len"), L = Lt + Li;
    const int64_t h = dims_.hidden;
    Tensor c_act = be.empty(state.at("c").shape());
    be.silu(state.at("c"), c_act);
    const std::string streams[2] = {name_ + ".context_block", name_ + ".x_block"};  // the joint sequence's order
    Tensor mod[2] = {modulation(be, w, streams[0] + ".adaLN_modulation.1", c_act, last_ ? 2 : 6),
                     modulation(be, w, streams[1] + ".adaLN_modulation.1", c_act, dual_ ? 9 : 6)};

    // q | k | v of the joint sequence, each stream writing its rows; attn2's from the block input.
    Tensor qkv = be.empty({B, L, 3 * h});
    Tensor rows[2] = {x.slice_rows(0, Lt), x.slice_rows(Lt, Li)};
    Tensor qkv_rows[2] = {qkv.slice_rows(0, Lt), qkv.slice_rows(Lt, Li)};
    Tensor qkv2;
    for (int s = 0; s < 2; ++s) {
      if (rows[s].dim(1) == 0) continue;
      Tensor normed = be.empty(rows[s].shape());
      be.layer_norm_modulate(rows[s], mod[s], kShiftMsa, kScaleMsa, kNormEps, normed);
      project_qkv(be, w, streams[s] + ".attn", normed, qkv_rows[s]);
      if (s == 1 && dual_) {
        be.layer_norm_modulate(rows[s], mod[s], kShiftMsa2, kScaleMsa2, kNormEps, normed);
        qkv2 = be.empty({B, Li, 3 * h});
        project_qkv(be, w, streams[s] + ".attn2", normed, qkv2);
      }
    }
    Tensor attn = be.empty({B, L, h});
    runtime::self_attention(be, state, qkv.slice_cols(0, h), qkv.slice_cols(h, h), qkv.slice_cols(2 * h, h), attn,
                            dims_.heads);

    for (int s = 0; s < 2; ++s) {
      if (s == 0 && last_) continue;  // the last context stream only supplied q, k and v
      Tensor& stream = rows[s];
      const int64_t n = stream.dim(1);
      if (n == 0) continue;
      Tensor proj = be.empty({B, n, h});
      be.linear(attn.slice_rows(s == 0 ? 0 : Lt, n), w.at(streams[s] + ".attn.proj.weight"),
                &w.at(streams[s] + ".attn.proj.bias"), proj);
      be.gated_add(stream, proj, mod[s], kGateMsa);
      if (s == 1 && dual_) {
        Tensor a2 = be.empty({B, Li, h});
        runtime::token_self_attention(be, state, qkv2.slice_cols(0, h), qkv2.slice_cols(h, h), qkv2.slice_cols(2 * h, h),
                                      a2, dims_.heads);
        be.linear(a2, w.at(streams[s] + ".attn2.proj.weight"), &w.at(streams[s] + ".attn2.proj.bias"), proj);
        be.gated_add(stream, proj, mod[s], kGateMsa2);
      }
      Tensor normed = be.empty({B, n, h});
      be.layer_norm_modulate(stream, mod[s], kShiftMlp, kScaleMlp, kNormEps, normed);
      Tensor hidden = be.empty({B, n, dims_.mlp});
      be.linear_gelu(normed, w.at(streams[s] + ".mlp.fc1.weight"), &w.at(streams[s] + ".mlp.fc1.bias"), hidden);
      be.linear(hidden, w.at(streams[s] + ".mlp.fc2.weight"), &w.at(streams[s] + ".mlp.fc2.bias"), proj);
      be.gated_add(stream, proj, mod[s], kGateMlp);
    }
  }

  std::vector<std::pair<std::string, Tensor>> outputs(const ActivationState& state) const override {
    const Tensor& x = state.at("x");
    const int64_t Lt = state.integer("txt_len"), Li = state.integer("img_len");
    std::vector<std::pair<std::string, Tensor>> out = {{name_ + ".out.x", x.slice_rows(Lt, Li)}};
    if (!last_) out.push_back({name_ + ".out.context", x.slice_rows(0, Lt)});
    return out;
  }

 private:
  // qkv(normed) into `qkv` [B, n, 3h], q and k RMS-normed per head when the model has ln_q/ln_k.
  void project_qkv(Backend& be, const WeightLookup& w, const std::string& p, const Tensor& normed, Tensor& qkv) const {
    be.linear(normed, w.at(p + ".qkv.weight"), &w.at(p + ".qkv.bias"), qkv);
    if (!qk_norm_) return;
    Tensor q = qkv.slice_cols(0, dims_.hidden), k = qkv.slice_cols(dims_.hidden, dims_.hidden);
    be.rms_norm(q, q, w.at(p + ".ln_q.weight"), dims_.head_dim, kNormEps);
    be.rms_norm(k, k, w.at(p + ".ln_k.weight"), dims_.head_dim, kNormEps);
  }

  std::string name_;
  Dims dims_;
  bool last_, dual_, qk_norm_;
};

class SD3Model final : public runtime::Model {
 public:
  explicit SD3Model(const arch::SD3Params& p) : params_(p), dims_(p) {
    for (int64_t i = 0; i < p.depth; ++i) {
      const bool dual = std::find(p.x_block_self_attn_layers.begin(), p.x_block_self_attn_layers.end(), i) !=
                        p.x_block_self_attn_layers.end();
      blocks_.push_back(std::make_unique<JointBlock>(int(i), dims_, i == p.depth - 1, dual, p.qk_norm == "rms"));
    }
  }

  const std::vector<std::unique_ptr<runtime::Block>>& blocks() const override { return blocks_; }

  std::vector<std::string> prologue_weight_names() const override {
    std::vector<std::string> names = {"pos_embed", "x_embedder.proj.weight", "x_embedder.proj.bias"};
    for (const char* l : {"t_embedder.mlp.0", "t_embedder.mlp.2", "y_embedder.mlp.0", "y_embedder.mlp.2", "context_embedder"})
      for (const char* p : {".weight", ".bias"}) names.push_back(std::string(l) + p);
    return names;
  }

  std::vector<std::string> epilogue_weight_names() const override {
    return {"final_layer.adaLN_modulation.1.weight", "final_layer.adaLN_modulation.1.bias", "final_layer.linear.weight",
            "final_layer.linear.bias"};
  }

  runtime::TokenCounts tokens(const HostTensors& in) const override {
    const HostTensor* x = optional_input(in, "x");
    const HostTensor* ctx = optional_input(in, "context");
    return {x && x->shape.size() == 4 ? (x->shape[2] / 2) * (x->shape[3] / 2) : 0,
            ctx && ctx->shape.size() == 3 ? ctx->shape[1] : 0};
  }

  double prologue_flops(const runtime::TokenCounts& t) const override {
    const int64_t h = dims_.hidden;
    return linear_flops(t.image, h, 4 * params_.in_channels) + linear_flops(t.text, h, params_.context_in_dim) +
           linear_flops(1, h, kTimeEmbedding) + linear_flops(1, h, params_.adm_in_channels) + 2 * linear_flops(1, h, h);
  }

  double epilogue_flops(const runtime::TokenCounts& t) const override {
    return linear_flops(1, 2 * dims_.hidden, dims_.hidden) + linear_flops(t.image, 4 * params_.out_channels, dims_.hidden);
  }

  // State between blocks: x [B, L, h] (context rows, then image rows), c [B, 1, h].
  int64_t state_elements(const runtime::TokenCounts& t, int64_t batch) const override {
    return batch * ((t.image + t.text) * dims_.hidden + dims_.hidden);
  }

  // Context first, as in the joint attention: image tokens split over sequence-parallel ranks,
  // the context rows stay whole on every rank.
  runtime::StateLayout state_layout(const ActivationState& state) const override {
    return joint_sequence_layout(state, {"x"}, {"x", "c"});
  }

  // The largest of: the prologue, any block on top of the state, the epilogue on top of it.
  int64_t activation_elements(const runtime::TokenCounts& t, int64_t batch) const override {
    const int64_t Lt = t.text, Li = t.image, L = Lt + Li, h = dims_.hidden, B = batch;
    const int64_t M2 = params_.pos_embed_max_size * params_.pos_embed_max_size;
    // prologue(): x [B, L, h]; beside it the patch or context upload, the pos_embed table and
    // its crop, or an embedder's input, hidden and output with c.
    const int64_t prologue =
        B * L * h + std::max({B * Li * 4 * params_.in_channels, B * Lt * params_.context_in_dim, (M2 + Li) * h,
                              B * (4 * h + std::max(kTimeEmbedding, params_.adm_in_channels))});
    // A block: c_act and the two modulations (at most 9 + 6 chunks), qkv and attn over L, and
    // for the longer stream n its normed, proj and MLP hidden; attn2 its qkv and output.
    const int64_t n = std::max(Lt, Li);
    const int64_t block = B * (16 * h + 4 * L * h + n * (2 * h + dims_.mlp) +
                               (params_.x_block_self_attn_layers.empty() ? 0 : 4 * Li * h));
    // epilogue(): c_act, mod [B, 2, h], normed [B, Li, h], out [B, Li, 4 out_channels].
    const int64_t epilogue = B * (3 * h + Li * (h + 4 * params_.out_channels));
    return std::max(prologue, state_elements(t, B) + std::max(block, epilogue));
  }

  ActivationState prologue(Backend& be, const WeightLookup& w, const HostTensors& in) const override {
    const HostTensor& x = require_input(in, "x", {-1, params_.in_channels, -1, -1}, "[B, in_channels, H, W]");
    const int64_t B = x.shape[0], H = x.shape[2], W = x.shape[3], h = dims_.hidden;
    if (H % 2 || W % 2 || H == 0 || W == 0)
      fail("model input 'x': latent {} needs an even, non-zero height and width", shape_string(x.shape));
    const int64_t gh = H / 2, gw = W / 2, Li = gh * gw, M = params_.pos_embed_max_size;
    if (gh > M || gw > M)
      fail("model input 'x': a {}x{} patch grid exceeds the position table's {}x{} (pos_embed_max_size)", gh, gw, M, M);
    const HostTensor& t = require_input(in, "t", {B}, "[B] (1000·sigma)");
    const HostTensor& y = require_input(in, "y", {B, params_.adm_in_channels}, "[B, adm_in_channels] (pooled)");
    const HostTensor& context =
        require_input(in, "context", {B, -1, params_.context_in_dim}, "[B, L, context_in_dim]");
    const int64_t Lt = context.shape[1];

    ActivationState state;
    state.set_int("txt_len", Lt);
    state.set_int("img_len", Li);
    state.set_int("height", H);
    state.set_int("width", W);
    Tensor joint = be.empty({B, Lt + Li, h});
    Tensor img = joint.slice_rows(Lt, Li);
    be.linear(to_backend(be, patchify_2x2(x, PatchOrder::ChannelMajor).data, {B, Li, 4 * params_.in_channels}),
              w.at("x_embedder.proj.weight"), &w.at("x_embedder.proj.bias"), img);
    // The pos_embed rows of the centred gh×gw window of its M×M grid.
    const Tensor table = be.dequantize(w.at("pos_embed"), {1, M * M, h});
    Tensor cropped = be.empty({1, Li, h});
    const int64_t top = (M - gh) / 2, left = (M - gw) / 2;
    for (int64_t r = 0; r < gh; ++r) {
      Tensor dst = cropped.slice_rows(r * gw, gw);
      be.copy(table.slice_rows((top + r) * M + left, gw), dst);
    }
    be.add(img, cropped, img);
    if (Lt > 0) {
      Tensor txt = joint.slice_rows(0, Lt);
      be.linear(to_backend(be, context.data, {B, Lt, params_.context_in_dim}), w.at("context_embedder.weight"),
                &w.at("context_embedder.bias"), txt);
    }
    state.set("x", joint);
    // c = t_embedder(emb(t)) + y_embedder(y); t is already 1000·σ, in float32 arguments.
    Tensor c = embed(be, w, "t_embedder", timestep_embedding(t.data, kTimeEmbedding, EmbeddingArithmetic::Float32Arguments),
                     B, kTimeEmbedding);
    be.add(c, embed(be, w, "y_embedder", y.data, B, params_.adm_in_channels), c);
    state.set("c", c);
    return state;
  }

  HostTensor epilogue(Backend& be, const WeightLookup& w, ActivationState& state) const override {
    const Tensor& x = state.at("x");
    const int64_t B = x.dim(0), Lt = state.integer("txt_len"), Li = state.integer("img_len");
    const FinalLayer layer{"final_layer.adaLN_modulation.1", "final_layer.linear", 0, 1, kNormEps};  // shift, then scale
    const Tensor out = final_layer(be, w, layer, state.at("c"), x.slice_rows(Lt, Li), 4 * params_.out_channels);
    const Shape latent{B, params_.out_channels, state.integer("height"), state.integer("width")};
    return unpatchify_2x2(to_host(be, out), latent, PatchOrder::PatchMajor);
  }

 private:
  // mlp.2(SiLU(mlp.0(x))), x [B, width] → [B, 1, h].
  Tensor embed(Backend& be, const WeightLookup& w, const std::string& prefix, std::span<const float> x, int64_t B,
               int64_t width) const {
    return mlp_embed(be, w, prefix + ".mlp.0", prefix + ".mlp.2", x, B, width, dims_.hidden);
  }

  arch::SD3Params params_;
  Dims dims_;
  std::vector<std::unique_ptr<runtime::Block>> blocks_;
};

}  // namespace

std::unique_ptr<runtime::Model> make_sd3_model(const arch::SD3Params& params) {
  if (params.patch_size != 2) fail("SD3 patch_size {}: ditrun runs 2 (every released model)", params.patch_size);
  if (params.hidden_size % params.num_heads != 0)
    fail("SD3 hidden_size {} is not a multiple of num_heads {}", params.hidden_size, params.num_heads);
  if (params.qk_norm != "rms" && !params.qk_norm.empty()) fail("SD3 qk_norm '{}': ditrun runs rms or none", params.qk_norm);
  return std::make_unique<SD3Model>(params);
}

}  // namespace ditrun::models::sd3
