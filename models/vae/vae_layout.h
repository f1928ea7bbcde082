// Every tensor of a VAE under its released name, with its PyTorch shape, derived from the
// config alone: what a file must hold (check_vae_tensors), what the VAE weighs (planning),
// and what `ditrun synth` writes for a synthetic VAE.
#pragma once

#include <string>
#include <vector>

#include "models/vae/vae_config.h"

namespace ditrun::models::vae {

// Both directions (encoder, decoder and the latent 1x1 convs), in the module order of the
// official state_dict.
std::vector<NamedShape> vae_tensor_layout(const VaeConfig& config);

// Fails with "<source>: ..." naming the first tensor that is missing, extra or of another shape
// than the config's layout (shapes compared without size-1 dims, as GGUF may trim them).
void check_vae_tensors(const VaeConfig& config, const std::vector<NamedShape>& tensors, const std::string& source);

// Parameter count and bytes in bf16 of the decoder (what decoding keeps resident).
int64_t decoder_parameters(const VaeConfig& config);

}  // namespace ditrun::models::vae
