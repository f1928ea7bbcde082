// The family-specific glue between a sampler and a network: the latent shape for a requested
// image or video size, the conditioning a job must provide, and the velocity v(x, σ) with
// the family's guidance (Flux: embedded guidance, one call; Wan: classifier-free guidance,
// cond and uncond as one batch of two). It knows nothing of where the network runs: a step is
// network_inputs → one network call (one rank, or a pipeline of ranks) → velocity_from_output.
//
// Latents here are one job's latent without a batch dim: [C, H, W] (Flux) or [C, F, H, W]
// (Wan), in model space (the normalised latent the network sees).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "models/arch/model_config.h"
#include "runtime/exec/model.h"
#include "runtime/exec/weight_store.h"
#include "runtime/run/denoising.h"

namespace ditrun::models {

using runtime::Conditioning;
using runtime::Guidance;

class Denoiser : public runtime::Denoising {
 public:
  // Latent shape for a render of width × height pixels (and frames for video).
  virtual Shape latent_shape(int64_t width, int64_t height, int64_t frames) const = 0;
  // Fails naming the problem when a latent (e.g. from a noise file) cannot be rendered.
  virtual void check_latent(const Shape& latent) const = 0;
  // Fails naming the cond file and tensor when the conditioning does not fit the model.
  virtual void check_conditioning(const Conditioning& cond, const Guidance& guidance) const = 0;
  // Latent patches the network sees (the token count Flux's dynamic shift depends on).
  virtual int64_t image_tokens(const Shape& latent) const = 0;
  // Network calls per step (2 with classifier-free guidance).
  virtual int calls_per_step(const Guidance& guidance) const = 0;
  // network_inputs and velocity_from_output: runtime::Denoising.

  using NetworkCall = std::function<HostTensor(const runtime::HostTensors& inputs)>;
  HostTensor velocity(const HostTensor& x, double sigma, const Conditioning& cond, const Guidance& guidance,
                      const NetworkCall& network) const {
    return velocity_from_output(network(network_inputs(x, sigma, std::nullopt, cond, guidance)), x.shape, guidance);
  }
};

std::unique_ptr<Denoiser> make_denoiser(const arch::ModelConfig& config);

// Pixels per latent position of the model's VAE: 16 for Wan 2.2's 48-channel latents
// (TI2V-5B), 8 for the others.
int64_t latent_stride(const arch::ModelConfig& config);

// The network call of one rank that holds the whole model.
Denoiser::NetworkCall local_network(runtime::Backend& backend, const runtime::Model& network,
                                    runtime::WeightStore& weights);

}  // namespace ditrun::models
