#include "models/common/final_layer.h"

namespace ditrun::models {

Tensor final_layer(runtime::Backend& be, const runtime::WeightLookup& w, const FinalLayer& layer, const Tensor& c,
                   const Tensor& x, int64_t out_features) {
  const int64_t B = x.dim(0), L = x.dim(1), h = x.dim(2);
  Tensor c_act = be.empty(c.shape());
  be.silu(c, c_act);
  Tensor mod = be.empty({B, 1, 2 * h});
  be.linear(c_act, w.at(layer.modulation + ".weight"), &w.at(layer.modulation + ".bias"), mod);
  mod = mod.view({B, 2, h});
  Tensor normed = be.empty({B, L, h});
  be.layer_norm_modulate(x, mod, layer.shift_chunk, layer.scale_chunk, layer.eps, normed);
  Tensor out = be.empty({B, L, out_features});
  be.linear(normed, w.at(layer.linear + ".weight"), &w.at(layer.linear + ".bias"), out);
  return out;
}

}  // namespace ditrun::models
