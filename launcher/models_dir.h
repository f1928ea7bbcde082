// A ComfyUI `models/` tree (--models DIR) as ditrun reads it: diffusion models in
// `diffusion_models/` and `unet/`, text encoders in `text_encoders/` and `clip/`, VAEs in
// `vae/`. Files are matched by what they hold (architecture, widths, latent channels), not by
// name; every choice is logged.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "launcher/backend_options.h"
#include "models/arch/model_config.h"

namespace ditrun::launcher {

// The .safetensors and .gguf files under DIR/<sub> for each sub, sorted by path.
std::vector<std::string> files_in_models_dir(const std::string& dir, std::initializer_list<const char*> subfolders);

// MODEL as given when it exists; else DIR/diffusion_models/MODEL or DIR/unet/MODEL. Fails
// naming where it looked.
std::string resolve_model_path(const std::string& model, const std::optional<std::string>& dir);

// The first VAE in DIR/vae that decodes `model`'s latents (channels, image or video).
std::optional<std::string> find_vae_in_models_dir(const std::string& dir, const arch::ModelConfig& model);

}  // namespace ditrun::launcher
