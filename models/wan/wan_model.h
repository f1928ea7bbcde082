// Wan 2.1 text-to-video (and the Wan 2.2 A14B experts, which share its architecture) as a
// runtime::Model (models.md §2.5).
// Inputs (runtime::HostTensors, the reference io names without "in."):
//   x [B, in_dim, F, H, W] latent video, t [B] (= 1000·σ), context [B, L, text_dim]
//   (L ≤ text_len; padded here with zeros to text_len, as the reference code does).
// Output: [B, out_dim, F, H, W].
#pragma once

#include <memory>

#include "models/arch/model_config.h"
#include "runtime/exec/model.h"

namespace ditrun::models::wan {

// Fails with "not supported yet" for the image-conditioned variants (CLIP branch, TI2V
// per-token timesteps).
std::unique_ptr<runtime::Model> make_wan_model(const arch::WanParams& params);

}  // namespace ditrun::models::wan
