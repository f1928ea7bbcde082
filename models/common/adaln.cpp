#include "models/common/adaln.h"

namespace ditrun::models {

Tensor modulation(runtime::Backend& be, const runtime::WeightLookup& w, const std::string& linear, const Tensor& c_act,
                  int64_t chunks) {
  const int64_t B = c_act.dim(0), h = c_act.dim(2);
  Tensor m = be.empty({B, 1, chunks * h});
  be.linear(c_act, w.at(linear + ".weight"), &w.at(linear + ".bias"), m);
  return m.view({B, chunks, h});
}

Tensor final_layer(runtime::Backend& be, const runtime::WeightLookup& w, const FinalLayer& layer, const Tensor& c,
                   const Tensor& x, int64_t out_features) {
  const int64_t B = x.dim(0), L = x.dim(1), h = x.dim(2);
  Tensor c_act = be.empty(c.shape());
  be.silu(c, c_act);
  const Tensor mod = modulation(be, w, layer.modulation, c_act, 2);
  Tensor normed = be.empty({B, L, h});
  be.layer_norm_modulate(x, mod, layer.shift_chunk, layer.scale_chunk, layer.eps, normed);
  Tensor out = be.empty({B, L, out_features});
  be.linear(normed, w.at(layer.linear + ".weight"), &w.at(layer.linear + ".bias"), out);
  return out;
}

}  // namespace ditrun::models
