// A VAE on the Backend: decode latents of the diffusion model's space into pixels in [-1, 1]
// (not clamped: callers that write pictures clamp) and encode pixels into latents, for BFL's
// Flux autoencoder and Wan 2.1/2.2's causal video VAEs (vae_config.h). Weights stay in their
// storage type (any encoding linear() takes) and are loaded to the backend on first use.
//
// Layouts at the boundary are PyTorch's: images [B, C, H, W], videos [B, C, F, H, W]; inside,
// activations are [B, T·H·W, C] over a Volume (runtime/core/volume.h).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "models/quant/weight_set.h"
#include "models/vae/vae_config.h"
#include "runtime/backend/backend.h"

namespace ditrun::models::vae {

// Receives intermediate activations under the reference names ("decode.decoder.conv_in.out")
// in PyTorch layout; empty: none are downloaded.
using IntermediateSink = std::function<void(const std::string& name, const HostTensor& t)>;

struct Encoded {
  HostTensor mean;    // the posterior mean, in the VAE's own latent space
  HostTensor latent;  // normalised into the diffusion model's latent space (what encode returns)
};

// How decode walks a video (Wan; images have one frame either way).
enum class FramePass {
  // One latent frame at a time through the causal cache, as the official decode does: memory
  // bounded by one latent frame's activations, results equal to the whole sequence.
  Chunked,
  // Every latent frame in one pass: what the reference intermediates record (the only pass
  // that reports intermediates for videos).
  WholeSequence,
};

class Vae {
 public:
  virtual ~Vae() = default;
  virtual const VaeConfig& config() const = 0;
  // z [B, C, h, w] (Flux) or [B, C, T, h, w] (Wan) → [B, 3, H, W] or [B, 3, 1+4(T−1), H, W].
  virtual HostTensor decode(const HostTensor& z, const IntermediateSink& sink = {},
                            FramePass pass = FramePass::Chunked) = 0;
  // pixels [B, 3, H, W] or [B, 3, F, H, W] (Wan keeps the first 1+4·⌊(F−1)/4⌋ frames).
  virtual Encoded encode(const HostTensor& pixels, const IntermediateSink& sink = {}) = 0;
};

// Fails (one line naming `source` and the tensor) when a weight the model needs for the
// direction called is missing or has the wrong shape.
std::unique_ptr<Vae> make_vae(const VaeConfig& config, runtime::Backend& backend, const quant::WeightSet& weights,
                              const std::string& source);

}  // namespace ditrun::models::vae
