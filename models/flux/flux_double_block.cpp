// Flux's double blocks (BFL's DoubleStreamBlock): image and text streams with their own weights, one joint
// attention.
#include <algorithm>
#include <string>

#include "models/common/adaln.h"
#include "models/common/double_stream_cost.h"
#include "models/common/model_io.h"
#include "models/flux/flux_blocks.h"
#include "runtime/exec/sequence_parallel.h"

namespace ditrun::models::flux {
namespace {

using runtime::ActivationState;
using runtime::Backend;
using runtime::WeightLookup;

// Modulation chunks of `{S}_mod.lin(SiLU(vec))`, in order.
enum Chunk { kShift1, kScale1, kGate1, kShift2, kScale2, kGate2 };

class DoubleBlock final : public DoubleStreamBlock {
 public:
  DoubleBlock(int index, const Dims& dims)
      : DoubleStreamBlock({dims.hidden, dims.head_dim, dims.mlp}), name_("double_blocks." + std::to_string(index)),
        dims_(dims) {}

  const std::string& name() const override { return name_; }

  std::vector<std::string> weight_names() const override {
    std::vector<std::string> names;
    for (const char* s : {"img", "txt"})
      for (const char* w : {"_mod.lin.weight", "_mod.lin.bias", "_attn.qkv.weight", "_attn.qkv.bias",
                            "_attn.norm.query_norm.scale", "_attn.norm.key_norm.scale", "_attn.proj.weight",
                            "_attn.proj.bias", "_mlp.0.weight", "_mlp.0.bias", "_mlp.2.weight", "_mlp.2.bias"})
        names.push_back(name_ + "." + s + w);
    return names;
  }

  void forward(Backend& be, const WeightLookup& w, ActivationState& state) const override {
    const Tensor& x = state.at("x");
    const Tensor& vec = state.at("vec");
    const int64_t B = x.dim(0), Lt = state.integer("txt_len"), Li = state.integer("img_len"), L = Lt + Li;
    const int64_t h = dims_.hidden;

    // Modulation vectors for both streams: [B, 6, h] views of lin(SiLU(vec)).
    Tensor vec_act = be.empty(vec.shape());
    be.silu(vec, vec_act);
    const char* streams[2] = {"txt", "img"};  // txt first, as in the joint sequence
    const Tensor mod[2] = {modulation(be, w, name_ + ".txt_mod.lin", vec_act, 6),
                           modulation(be, w, name_ + ".img_mod.lin", vec_act, 6)};

    // q | k | v of the joint sequence; each stream writes its own rows.
    Tensor qkv = be.empty({B, L, 3 * h});
    Tensor rows[2] = {x.slice_rows(0, Lt), x.slice_rows(Lt, Li)};
    Tensor qkv_rows[2] = {qkv.slice_rows(0, Lt), qkv.slice_rows(Lt, Li)};
    for (int s = 0; s < 2; ++s) {
      Tensor normed = be.empty(rows[s].shape());
      be.layer_norm_modulate(rows[s], mod[s], kShift1, kScale1, kNormEps, normed);
      be.linear(normed, weight(w, streams[s], "_attn.qkv.weight"), &weight(w, streams[s], "_attn.qkv.bias"),
                qkv_rows[s]);
      Tensor q = qkv_rows[s].slice_cols(0, h), k = qkv_rows[s].slice_cols(h, h);
      be.rms_norm(q, q, weight(w, streams[s], "_attn.norm.query_norm.scale"), dims_.head_dim, kNormEps);
      be.rms_norm(k, k, weight(w, streams[s], "_attn.norm.key_norm.scale"), dims_.head_dim, kNormEps);
    }
    Tensor q = qkv.slice_cols(0, h), k = qkv.slice_cols(h, h), v = qkv.slice_cols(2 * h, h);
    be.rope(q, state.at("pe"), dims_.heads);
    be.rope(k, state.at("pe"), dims_.heads);
    Tensor attn = be.empty({B, L, h});
    runtime::self_attention(be, state, q, k, v, attn, dims_.heads);

    // Both streams' updates read only the attention output and their own rows.
    for (int s = 0; s < 2; ++s) {
      Tensor& stream = rows[s];
      const int64_t n = stream.dim(1);
      Tensor proj = be.empty({B, n, h});
      be.linear(attn.slice_rows(s == 0 ? 0 : Lt, n), weight(w, streams[s], "_attn.proj.weight"),
                &weight(w, streams[s], "_attn.proj.bias"), proj);
      be.gated_add(stream, proj, mod[s], kGate1);

      Tensor normed = be.empty({B, n, h});
      be.layer_norm_modulate(stream, mod[s], kShift2, kScale2, kNormEps, normed);
      Tensor hidden = be.empty({B, n, dims_.mlp});
      be.linear_gelu(normed, weight(w, streams[s], "_mlp.0.weight"), &weight(w, streams[s], "_mlp.0.bias"), hidden);
      be.linear(hidden, weight(w, streams[s], "_mlp.2.weight"), &weight(w, streams[s], "_mlp.2.bias"), proj);
      be.gated_add(stream, proj, mod[s], kGate2);
    }
  }

  std::vector<std::pair<std::string, Tensor>> outputs(const ActivationState& state) const override {
    const Tensor& x = state.at("x");
    const int64_t Lt = state.integer("txt_len"), Li = state.integer("img_len");
    return {{name_ + ".out.img", x.slice_rows(Lt, Li)}, {name_ + ".out.txt", x.slice_rows(0, Lt)}};
  }

 private:
  const runtime::DeviceWeight& weight(const WeightLookup& w, const char* stream, const char* suffix) const {
    return w.at(name_ + "." + stream + suffix);
  }

  std::string name_;
  Dims dims_;
};

}  // namespace

// What forward() above holds at its peak, the second loop (each stream's MLP):
//   vec_act [B, 1, h], mod[2] 2 x [B, 1, 6h], qkv [B, L, 3h], attn [B, L, h]   (whole forward)
//   proj, normed [B, n, h] and hidden [B, n, mlp] for the longer stream n     (one iteration)
// The first loop's `normed` [B, n, h] is gone by then and smaller than the second loop's set.
int64_t double_block_temporaries(const Dims& dims, int64_t txt_len, int64_t img_len, int64_t batch) {
  const int64_t h = dims.hidden, L = txt_len + img_len, n = std::max(txt_len, img_len);
  return batch * (13 * h + 4 * L * h + n * (2 * h + dims.mlp));
}

std::unique_ptr<runtime::Block> make_double_block(int index, const Dims& dims) {
  return std::make_unique<DoubleBlock>(index, dims);
}

}  // namespace ditrun::models::flux
