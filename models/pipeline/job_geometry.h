// One job as the network sees it: pixels to latent tokens by the Denoiser's rules
// (denoiser.cpp), the batch of one network call, the steps, and the defaults a job gets when
// it names no size. The planner needs this before any conditioning file or noise exists.
//   Flux  16-channel latents at 1/8 of the pixels rounded up to whole 2×2 patches:
//         ceil(H/16)·ceil(W/16) image tokens; text tokens as the prompt encodes (T5: 512 dev,
//         256 schnell); one item per call (embedded guidance, cfg must be 1).
//   Wan   4k+1 frames → 1+k latent frames, 1/8 of the pixels, 1×2×2 patches:
//         (1+k)·(H/16)·(W/16) tokens; the context is padded to text_len; classifier-free
//         guidance (cfg ≠ 1) runs cond and uncond as one batch of two.
#pragma once

#include <cstdint>
#include <optional>

#include "models/arch/model_config.h"
#include "runtime/exec/model.h"

namespace ditrun::models {

// What a job (or a command line) says; anything unset takes the model's default.
struct JobSettings {
  std::optional<int64_t> width{}, height{}, frames{}, text_tokens{}, steps{};
  std::optional<double> cfg{};
};

struct JobGeometry {
  int64_t width = 0, height = 0, frames = 1;
  runtime::TokenCounts tokens;  // per batch item
  int64_t batch = 1;            // items per network call
  int steps = 0;
  double cfg = 1;
};

// Flux 1024×1024; Wan 832×480, 81 frames. Text tokens: Flux dev 512, schnell 256; Wan text_len.
// Fails with the Denoiser's message for sizes it would refuse, and for families ditrun cannot
// sample yet.
JobGeometry job_geometry(const arch::ModelConfig& config, const JobSettings& settings);

}  // namespace ditrun::models
