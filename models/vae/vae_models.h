// The constructors behind make_vae (vae.h), one per design.
#pragma once

#include "models/vae/vae.h"

namespace ditrun::models::vae {

std::unique_ptr<Vae> make_flux_ae(const VaeConfig& config, runtime::Backend& backend, const quant::WeightSet& weights,
                                  const std::string& source);
// Wan 2.1 and Wan 2.2 (config.kind tells which).
std::unique_ptr<Vae> make_wan_vae(const VaeConfig& config, runtime::Backend& backend, const quant::WeightSet& weights,
                                  const std::string& source);

}  // namespace ditrun::models::vae
