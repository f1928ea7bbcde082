// Small helpers every model's prologue and epilogue use: checked access to named host
// inputs, and moving host tensors onto the backend.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "runtime/backend/host_copy.h"
#include "runtime/exec/model.h"

namespace ditrun::models {

// True when `shape` has want.size() dims and each equals `want` where `want` is not -1.
bool shape_fits(const Shape& shape, const Shape& want);

// The input `name` with `ndim` dims; `want` gives the expected size of each dim, -1 for any.
// Fails naming the input: "model input 'txt': shape [2, 7] should be [B, L, 64]".
const HostTensor& require_input(const runtime::HostTensors& inputs, std::string_view name, const Shape& want,
                                std::string_view layout);
const HostTensor* optional_input(const runtime::HostTensors& inputs, std::string_view name);

// An MLP embedder of a conditioning vector: `second`(SiLU(`first`(x))), x [B, width] → [B, 1,
// hidden]; `first` and `second` name Linear layers with a bias (Flux's in_layer/out_layer,
// SD3's mlp.0/mlp.2).
Tensor mlp_embed(runtime::Backend& backend, const runtime::WeightLookup& weights, const std::string& first,
                 const std::string& second, std::span<const float> x, int64_t batch, int64_t width, int64_t hidden);

// [B, Ca, ...] and [B, Cb, ...] (same B and trailing dims) joined along dim 1: [B, Ca + Cb, ...].
HostTensor concat_channels(const HostTensor& a, const HostTensor& b);

using runtime::to_backend;
using runtime::to_host;

// 2·N·K per token of a linear layer [N, K].
inline double linear_flops(int64_t tokens, int64_t n, int64_t k) { return 2.0 * double(tokens) * double(n) * double(k); }
// q·kᵀ and p·v for one batch item.
inline double attention_flops(int64_t lq, int64_t lk, int64_t width) { return 4.0 * double(lq) * double(lk) * double(width); }

}  // namespace ditrun::models
