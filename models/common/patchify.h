// 2×2 spatial patches ↔ tokens, on host latents (the sampler's latents live on the host;
// packing them is input preparation, not model math).
// Tokens run over (frame, patch row, patch col) in row-major order. Within a token, Flux
// and Wan's patch embedding order features channel-major (c·4 + ph·2 + pw); Wan's head
// writes them patch-major ((ph·2 + pw)·C + c).
#pragma once

#include <cstdint>

#include "runtime/core/tensor.h"

namespace ditrun::models {

enum class PatchOrder { ChannelMajor, PatchMajor };

// x [B, C, H, W] or [B, C, F, H, W] → [B, F·(H/2)·(W/2), 4·C]. H and W must be even.
HostTensor patchify_2x2(const HostTensor& x, PatchOrder order = PatchOrder::ChannelMajor);
// The inverse: tokens [B, L, 4·C] → `latent_shape` ([B, C, H, W] or [B, C, F, H, W]).
HostTensor unpatchify_2x2(const HostTensor& tokens, const Shape& latent_shape, PatchOrder order);

}  // namespace ditrun::models
