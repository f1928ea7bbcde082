// SingleStreamBlock: one stream over the joint sequence, attention and MLP in parallel from
// one fused input projection (linear1 rows: q | k | v | mlp_in) and one fused output
// projection (linear2 columns: attention | mlp activation).
#include <string>

#include "models/common/adaln.h"
#include "models/common/model_io.h"
#include "models/flux/flux_blocks.h"
#include "runtime/exec/sequence_parallel.h"

namespace ditrun::models::flux {
namespace {

using runtime::ActivationState;
using runtime::Backend;
using runtime::WeightLookup;

enum Chunk { kShift, kScale, kGate };

class SingleBlock final : public runtime::Block {
 public:
  SingleBlock(int index, const Dims& dims) : name_("single_blocks." + std::to_string(index)), dims_(dims) {}

  const std::string& name() const override { return name_; }

  std::vector<std::string> weight_names() const override {
    std::vector<std::string> names;
    for (const char* w : {"linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias", "norm.query_norm.scale",
                          "norm.key_norm.scale", "modulation.lin.weight", "modulation.lin.bias"})
      names.push_back(name_ + "." + w);
    return names;
  }

  double flops(const runtime::TokenCounts& t) const override {
    const int64_t h = dims_.hidden, m = dims_.mlp, L = t.image + t.text;
    return double(L) * (linear_flops(1, 3 * h + m, h) + linear_flops(1, h, h + m)) + linear_flops(1, 3 * h, h) +
           attention_flops(t);
  }

  double attention_flops(const runtime::TokenCounts& t) const override {
    const int64_t L = t.image + t.text;
    return models::attention_flops(L, L, dims_.hidden);
  }

  // Per token: the modulated norm (2h), RMS norm and RoPE of q and k (2h each, plus RoPE's
  // table row), GELU of the MLP half (2 mlp), the gated residual (3h).
  double elementwise_elements(const runtime::TokenCounts& t) const override {
    const int64_t h = dims_.hidden, L = t.image + t.text;
    return double(L) * double(13 * h + 2 * dims_.head_dim + 2 * dims_.mlp);
  }

  // Joint attention: q, k, v and the output over text and image tokens.
  double self_attention_elements(const runtime::TokenCounts& t) const override {
    return 4.0 * double(t.image + t.text) * double(dims_.hidden);
  }

  void forward(Backend& be, const WeightLookup& w, ActivationState& state) const override {
    Tensor x = state.at("x");
    const Tensor& vec = state.at("vec");
    const int64_t B = x.dim(0), L = x.dim(1), h = dims_.hidden, m = dims_.mlp;

    Tensor vec_act = be.empty(vec.shape());
    be.silu(vec, vec_act);
    const Tensor mod = modulation(be, w, name_ + ".modulation.lin", vec_act, 3);

    Tensor normed = be.empty({B, L, h});
    be.layer_norm_modulate(x, mod, kShift, kScale, kNormEps, normed);
    Tensor fused = be.empty({B, L, 3 * h + m});
    be.linear(normed, w.at(name_ + ".linear1.weight"), &w.at(name_ + ".linear1.bias"), fused);

    Tensor q = fused.slice_cols(0, h), k = fused.slice_cols(h, h), v = fused.slice_cols(2 * h, h);
    be.rms_norm(q, q, w.at(name_ + ".norm.query_norm.scale"), dims_.head_dim, kNormEps);
    be.rms_norm(k, k, w.at(name_ + ".norm.key_norm.scale"), dims_.head_dim, kNormEps);
    be.rope(q, state.at("pe"), dims_.heads);
    be.rope(k, state.at("pe"), dims_.heads);

    // linear2's input is [attention | GELU(mlp_in)]: both halves are written in place.
    Tensor joined = be.empty({B, L, h + m});
    Tensor attn = joined.slice_cols(0, h), act = joined.slice_cols(h, m);
    runtime::self_attention(be, state, q, k, v, attn, dims_.heads);
    be.gelu_tanh(fused.slice_cols(3 * h, m), act);

    Tensor out = be.empty({B, L, h});
    be.linear(joined, w.at(name_ + ".linear2.weight"), &w.at(name_ + ".linear2.bias"), out);
    be.gated_add(x, out, mod, kGate);
  }

  std::vector<std::pair<std::string, Tensor>> outputs(const ActivationState& state) const override {
    return {{name_ + ".out", state.at("x")}};
  }

 private:
  std::string name_;
  Dims dims_;
};

}  // namespace

// forward() above keeps every temporary to its end: vec_act [B, 1, h], mod [B, 1, 3h],
// normed [B, L, h], fused [B, L, 3h + mlp], joined [B, L, h + mlp], out [B, L, h].
int64_t single_block_temporaries(const Dims& dims, int64_t tokens, int64_t batch) {
  const int64_t h = dims.hidden, m = dims.mlp;
  return batch * (4 * h + tokens * (6 * h + 2 * m));
}

std::unique_ptr<runtime::Block> make_single_block(int index, const Dims& dims) {
  return std::make_unique<SingleBlock>(index, dims);
}

}  // namespace ditrun::models::flux
