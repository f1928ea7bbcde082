// What a sampler step needs of a model family, and nothing more: the network's inputs for a
// latent at a noise level, and the velocity from the network's output (guidance applied).
// models::Denoiser implements it per family; the executor calls it on the ranks that start
// and end a network call, whatever runs the call in between.
#pragma once

#include <optional>

#include "runtime/run/sampling_job.h"

namespace ditrun::runtime {

class Denoising {
 public:
  virtual ~Denoising() = default;
  // The network's inputs for latent x at noise level sigma (the reference io names).
  // `timestep`: the model's own timestep where the sampler defines it (Wan's official solvers
  // give an integer on the 1000 scale); none: the family's function of sigma.
  virtual HostTensors network_inputs(const HostTensor& x, double sigma, std::optional<double> timestep,
                                     const Conditioning& cond, const Guidance& guidance) const = 0;
  // The velocity for a latent of shape `latent` from the network's output (guidance applied).
  virtual HostTensor velocity_from_output(const HostTensor& output, const Shape& latent,
                                          const Guidance& guidance) const = 0;
};

}  // namespace ditrun::runtime
