// FLUX.1 dev / schnell as a runtime::Model (models.md §1.5).
// Inputs (runtime::HostTensors, the reference io names without "in."):
//   img [B, L_img, in_channels] packed 2×2 patches, img_ids [B, L_img, 3], txt [B, L_txt, ctx],
//   txt_ids [B, L_txt, 3], y [B, vec_in_dim], timesteps [B] (σ in [0, 1]),
//   guidance [B] (guidance-distilled models only).
// Output: [B, L_img, out_channels].
#pragma once

#include <memory>

#include "models/arch/model_config.h"
#include "runtime/exec/model.h"

namespace ditrun::models::flux {

std::unique_ptr<runtime::Model> make_flux_model(const arch::FluxParams& params);

}  // namespace ditrun::models::flux
