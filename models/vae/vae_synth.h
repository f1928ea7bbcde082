// A VAE of a real design with deterministic random weights, under the released names, in
// bf16 safetensors: the built-in tiny VAE of `ditrun run`, tests and benchmarks. Its config
// goes into the file's metadata (ditrun.config), so opening it needs no sidecar.
#pragma once

#include <cstdint>
#include <string>

#include "models/vae/vae_config.h"

namespace ditrun::models::vae {

// Conv weights ~ N(0, 1/fan_in), biases small, norm scales around 1: decoded pictures stay in
// range instead of saturating. Written atomically.
void write_synthetic_vae(const VaeConfig& config, uint64_t seed, const std::string& path);

// The built-in tiny VAEs, 8 pixels per latent position like the released ones (so they decode
// the built-in tiny models' latents): "flux-ae-tiny" (ch 32, ch_mult [1,1,2,2], 1 res block) and
// "wan21-vae-tiny" (dim 8, dim_mult [1,2,2,2], 1 res block, the release's temporal pattern).
VaeConfig tiny_vae_preset(std::string_view name);

}  // namespace ditrun::models::vae
