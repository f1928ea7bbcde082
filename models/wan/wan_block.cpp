// WanAttentionBlock: modulated self-attention with 3-D RoPE, cross-attention to the text,
// modulated FFN. The modulation table is the block's own [1, 6, d] parameter plus e0.
#include <algorithm>
#include <string>

#include "models/common/model_io.h"
#include "models/wan/wan_blocks.h"
#include "runtime/exec/sequence_parallel.h"

namespace ditrun::models::wan {
namespace {

using runtime::ActivationState;
using runtime::Backend;
using runtime::WeightLookup;

enum Chunk { kShiftMsa, kScaleMsa, kGateMsa, kShiftFfn, kScaleFfn, kGateFfn };

class WanBlock final : public runtime::Block {
 public:
  WanBlock(int index, const Dims& dims) : name_("blocks." + std::to_string(index)), dims_(dims) {}

  const std::string& name() const override { return name_; }

  std::vector<std::string> weight_names() const override {
    std::vector<std::string> names = {name_ + ".modulation"};
    for (const char* a : {"self_attn", "cross_attn"}) {
      for (const char* l : {"q", "k", "v", "o"})
        for (const char* p : {"weight", "bias"}) names.push_back(name_ + "." + a + "." + l + "." + p);
      if (dims_.qk_norm)
        for (const char* n : {"norm_q", "norm_k"}) names.push_back(name_ + "." + a + "." + n + ".weight");
    }
    if (dims_.image_context) {
      for (const char* l : {"k_img", "v_img"})
        for (const char* p : {"weight", "bias"}) names.push_back(name_ + ".cross_attn." + l + "." + p);
      if (dims_.qk_norm) names.push_back(name_ + ".cross_attn.norm_k_img.weight");
    }
    if (dims_.cross_attn_norm)
      for (const char* p : {"weight", "bias"}) names.push_back(name_ + ".norm3." + p);
    for (const char* l : {"ffn.0", "ffn.2"})
      for (const char* p : {"weight", "bias"}) names.push_back(name_ + "." + l + "." + p);
    return names;
  }

  double flops(const runtime::TokenCounts& t) const override {
    const int64_t d = dims_.dim, L = t.image, Lc = t.text;
    return double(L) * (4 * linear_flops(1, d, d) + 2 * linear_flops(1, d, d) + 2 * linear_flops(1, dims_.ffn, d)) +
           double(Lc + image_tokens()) * 2 * linear_flops(1, d, d) + attention_flops(t);
  }

  double attention_flops(const runtime::TokenCounts& t) const override {
    return models::attention_flops(t.image, t.image, dims_.dim) +
           models::attention_flops(t.image, t.text + image_tokens(), dims_.dim);
  }

  // Per video token: two modulated norms (2d each), RoPE of q and k (2d each, plus the table
  // row), the gated residuals and the cross-attention residual (3d each), GELU (2 ffn); with
  // qk_norm the RMS norms of q, k and the cross-attention q (2d each), with cross_attn_norm
  // norm3 (2d). Per text token: the RMS norm of the cross-attention k.
  double elementwise_elements(const runtime::TokenCounts& t) const override {
    const int64_t d = dims_.dim;
    const int64_t per_token =
        17 * d + (dims_.qk_norm ? 6 * d : 0) + (dims_.cross_attn_norm ? 2 * d : 0) + 2 * dims_.head_dim + 2 * dims_.ffn;
    return double(t.image) * double(per_token + (dims_.image_context ? d : 0)) +
           (dims_.qk_norm ? double(t.text + image_tokens()) * double(2 * d) : 0.0);
  }

  double self_attention_elements(const runtime::TokenCounts& t) const override {
    return 4.0 * double(t.image) * double(dims_.dim);
  }

  void forward(Backend& be, const WeightLookup& w, ActivationState& state) const override {
    Tensor x = state.at("x");
    const int64_t B = x.dim(0), L = x.dim(1), d = dims_.dim;

    // The modulation table: per item [B, 6, d], or per token (Wan 2.2 TI2V's per-token
    // timesteps: e0 [B, L, 6d]), where each token is an item of its own ([B·L, 6, d]) and the
    // modulated ops see tokens as [B·L, 1, d].
    const Tensor& e0 = state.at("e0");
    const bool per_token = e0.cols() == 6 * d;
    const auto items = [&](const Tensor& t) { return per_token ? t.view({B * L, 1, d}) : t; };
    Tensor mod = be.empty(per_token ? Shape{B * L, 6, d} : Shape{B, 6, d});
    be.add(per_token ? e0.view({B * L, 6, d}) : e0, be.dequantize(w.at(name_ + ".modulation"), {1, 6, d}), mod);
    Tensor x_items = items(x);

    // Self-attention on the modulated, normalised tokens.
    Tensor normed = be.empty({B, L, d});
    Tensor normed_items = items(normed);
    be.layer_norm_modulate(x_items, mod, kShiftMsa, kScaleMsa, dims_.eps, normed_items);
    Tensor y = attention(be, w, "self_attn", normed, normed, &state.at("pe"), &state);
    be.gated_add(x_items, items(y), mod, kGateMsa);

    // Cross-attention to the text (no gate, no modulation).
    const Tensor* cross_in = &x;
    if (dims_.cross_attn_norm) {
      be.layer_norm(x, normed, dims_.eps, &w.at(name_ + ".norm3.weight"), &w.at(name_ + ".norm3.bias"));
      cross_in = &normed;
    }
    y = cross_attention(be, w, *cross_in, state);
    be.add(x, y, x);

    // FFN: Linear → GELU(tanh) → Linear, modulated and gated.
    be.layer_norm_modulate(x_items, mod, kShiftFfn, kScaleFfn, dims_.eps, normed_items);
    Tensor hidden = be.empty({B, L, dims_.ffn});
    be.linear_gelu(normed, w.at(name_ + ".ffn.0.weight"), &w.at(name_ + ".ffn.0.bias"), hidden);
    be.linear(hidden, w.at(name_ + ".ffn.2.weight"), &w.at(name_ + ".ffn.2.bias"), y);
    be.gated_add(x_items, items(y), mod, kGateFfn);
  }

  std::vector<std::pair<std::string, Tensor>> outputs(const ActivationState& state) const override {
    return {{name_ + ".out", state.at("x")}};
  }

 private:
  int64_t image_tokens() const { return dims_.image_context ? kClipTokens : 0; }

  // Cross-attention to the text; with the image context (Wan 2.1 I2V) the same queries also
  // attend to the image tokens (keys k_img RMS-normed by norm_k_img, values v_img), and the
  // two results are added before the one output projection.
  Tensor cross_attention(Backend& be, const WeightLookup& w, const Tensor& queries, const ActivationState& state) const {
    const std::string p = name_ + ".cross_attn.";
    const int64_t B = queries.dim(0), Lq = queries.dim(1), d = dims_.dim;
    Tensor q = be.empty({B, Lq, d});
    be.linear(queries, w.at(p + "q.weight"), &w.at(p + "q.bias"), q);
    if (dims_.qk_norm) be.rms_norm(q, q, w.at(p + "norm_q.weight"), d, dims_.eps);
    const auto attend = [&](const Tensor& keys, const std::string& k_name, const std::string& v_name,
                            const std::string& norm) {
      const int64_t Lk = keys.dim(1);
      Tensor k = be.empty({B, Lk, d}), v = be.empty({B, Lk, d}), a = be.empty({B, Lq, d});
      be.linear(keys, w.at(p + k_name + ".weight"), &w.at(p + k_name + ".bias"), k);
      be.linear(keys, w.at(p + v_name + ".weight"), &w.at(p + v_name + ".bias"), v);
      if (dims_.qk_norm) be.rms_norm(k, k, w.at(p + norm + ".weight"), d, dims_.eps);
      be.attention(q, k, v, a, dims_.heads, {});
      return a;
    };
    Tensor a = attend(state.at("context"), "k", "v", "norm_k");
    if (dims_.image_context) be.add(a, attend(state.at("context_img"), "k_img", "v_img", "norm_k_img"), a);
    Tensor out = be.empty({B, Lq, d});
    be.linear(a, w.at(p + "o.weight"), &w.at(p + "o.bias"), out);
    return out;
  }

  // o(softmax(q kᵀ/√D) v) with q from `queries`, k and v from `keys`; q and k RMS-normed
  // over the whole width when the model has qk_norm; RoPE when a table is given. Self-attention
  // passes the state: its tokens may be split over a sequence-parallel group.
  Tensor attention(Backend& be, const WeightLookup& w, const std::string& which, const Tensor& queries,
                   const Tensor& keys, const Tensor* pe, const ActivationState* self) const {
    const std::string p = name_ + "." + which + ".";
    const int64_t B = queries.dim(0), Lq = queries.dim(1), Lk = keys.dim(1), d = dims_.dim;
    Tensor q = be.empty({B, Lq, d}), k = be.empty({B, Lk, d}), v = be.empty({B, Lk, d});
    be.linear(queries, w.at(p + "q.weight"), &w.at(p + "q.bias"), q);
    be.linear(keys, w.at(p + "k.weight"), &w.at(p + "k.bias"), k);
    be.linear(keys, w.at(p + "v.weight"), &w.at(p + "v.bias"), v);
    if (dims_.qk_norm) {
      be.rms_norm(q, q, w.at(p + "norm_q.weight"), d, dims_.eps);
      be.rms_norm(k, k, w.at(p + "norm_k.weight"), d, dims_.eps);
    }
    if (pe) {
      be.rope(q, *pe, dims_.heads);
      be.rope(k, *pe, dims_.heads);
    }
    Tensor a = be.empty({B, Lq, d});
    if (self)
      runtime::self_attention(be, *self, q, k, v, a, dims_.heads);
    else
      be.attention(q, k, v, a, dims_.heads, {});
    Tensor out = be.empty({B, Lq, d});
    be.linear(a, w.at(p + "o.weight"), &w.at(p + "o.bias"), out);
    return out;
  }

  std::string name_;
  Dims dims_;
};

}  // namespace

// forward() above, phase by phase, on top of the state (Lc = text_len: the context is padded):
//   throughout         mod [B, 6, d] (+ the dequantized [1, 6, d] table while it is added)
//   from the norm on   normed [B, L, d]
//   self-attention     q, k, v, a and the returned out: 5 x [B, L, d]
//   cross-attention    the previous y [B, L, d] until reassigned, q, a, out [B, L, d], k, v [B, Lc, d]
//   FFN                y [B, L, d], hidden [B, L, ffn]
int64_t block_temporaries(const Dims& dims, int64_t tokens, int64_t batch, bool per_token_time) {
  const int64_t d = dims.dim, L = tokens, Lc = dims.text_len, B = batch;
  // Cross-attention holds q and the text result while the image keys, values and result live
  // (Wan 2.1 I2V: 2·257·d + L·d more).
  const int64_t image = dims.image_context ? 2 * kClipTokens * d + L * d : 0;
  const int64_t attention_phase = std::max({5 * L * d, 4 * L * d + 2 * Lc * d + image, L * d + L * dims.ffn});
  return B * (per_token_time ? L : 1) * 6 * d + std::max(6 * d, B * (L * d + attention_phase));
}

std::unique_ptr<runtime::Block> make_block(int index, const Dims& dims) { return std::make_unique<WanBlock>(index, dims); }

}  // namespace ditrun::models::wan
