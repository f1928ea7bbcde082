// adaLN, as the joint-attention DiTs use it: modulation vectors from the conditioning vector,
// and the output layer they end with (Flux's and SD3's `final_layer`, Qwen-Image's `norm_out`
// + `proj_out`): `modulation`(SiLU(c)) gives two chunks of the width (shift and scale, in the
// family's order), then LN(x)·(1 + scale) + shift (no affine) and `linear`.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/exec/model.h"

namespace ditrun::models {

// `linear`(c_act) as `chunks` vectors of c_act's width: [B, chunks, h] from c_act [B, 1, h]
// (SiLU(c) already applied; one activation serves a block's several modulations).
// `linear` names a Linear [chunks·h, h] with a bias.
Tensor modulation(runtime::Backend& backend, const runtime::WeightLookup& weights, const std::string& linear,
                  const Tensor& c_act, int64_t chunks);

struct FinalLayer {
  std::string modulation;  // a Linear [2h, h] with a bias, e.g. "final_layer.adaLN_modulation.1"
  std::string linear;      // a Linear [out_features, h] with a bias
  int shift_chunk = 0, scale_chunk = 1;
  float eps = 1e-6f;
};

// x [B, L, h] (a view is fine), c [B, 1, h] → [B, L, out_features].
Tensor final_layer(runtime::Backend& backend, const runtime::WeightLookup& weights, const FinalLayer& layer,
                   const Tensor& c, const Tensor& x, int64_t out_features);

}  // namespace ditrun::models
