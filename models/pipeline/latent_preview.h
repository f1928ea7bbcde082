// Cheap previews of a latent while it is being sampled, without a VAE: each latent pixel's
// channels are mixed into RGB by a fixed linear map (ComfyUI `latent_formats.py` factors,
// `latent_preview.Latent2RGBPreviewer`; models.md §6). The image has the latent's
// resolution (1/8 of the output, 1/16 for Wan 2.2 5B), enough to watch a job converge.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "models/arch/model_config.h"
#include "runtime/core/tensor.h"

namespace ditrun::models {

struct LatentFormat {
  std::string_view name;               // "flux", "wan21", "wan22", "sd3"
  int channels;                        // latent channels
  std::span<const float> rgb_factors;  // channels × 3 row-major: row = channel, cols = R, G, B
  std::array<float, 3> rgb_bias;
};

const LatentFormat& flux_latent_format();   // Flux.1 VAE, 16 channels
const LatentFormat& wan21_latent_format();  // Wan 2.1 VAE, 16 channels; Qwen-Image uses it too
const LatentFormat& wan22_latent_format();  // Wan 2.2 VAE (TI2V-5B), 48 channels
const LatentFormat& sd3_latent_format();    // SD3 / SD3.5 VAE, 16 channels

// By name as above; nullptr for an unknown name.
const LatentFormat* find_latent_format(std::string_view name);
// The format a model's latents are in: Flux, SD3 by family; Qwen-Image and Wan with 16
// output channels → wan21; Wan with 48 → wan22.
const LatentFormat& latent_format_for(const arch::ModelConfig& config);

// RGB bytes (row-major, 3 per pixel, height × width) of the x0 estimate `x0`, a latent
// [C, H, W] or, for video, [C, F, H, W] of which the first frame is shown. Sets width and
// height. Fails if C differs from the format's channel count or the rank is not 3 or 4.
//
// x0 must already be in model space (the normalised latent the network sees: ComfyUI
// previews `denoised` after `process_in`), so no scale, shift or per-channel mean/std is
// applied here; the factors were fitted on that space.
//
// Per pixel, in float as ComfyUI: rgb = Σ_c x0[c]·F[c] + bias, then
// byte = trunc(clamp((rgb + 1)/2, 0, 1)·255). ComfyUI converts with `.mul(0xFF)` followed by
// `.to(torch.uint8)`, which truncates rather than rounds, so we truncate too and previews
// match ComfyUI's byte for byte (up to float summation order). NaN becomes 0.
std::vector<uint8_t> preview_rgb(const HostTensor& x0, const LatentFormat& format, int& width, int& height);

}  // namespace ditrun::models
