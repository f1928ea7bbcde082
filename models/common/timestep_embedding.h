// The sinusoidal timestep embedding shared by every DiT family (models.md §0.2):
// emb(s) = [cos(s·f_0..f_{n-1}), sin(s·f_0..f_{n-1})], f_k = exp(−ln(max_period)·k/n),
// n = dim/2, cos first. It is computed on the host in double and uploaded as an input: it
// depends only on a handful of scalars, and a host result is the same on every backend.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ditrun::models {

enum class EmbeddingArithmetic {
  // BFL Flux: s·1000 and the frequencies are f32, their product is rounded to f32 before
  // cos/sin. Matching this matters: at s ≈ 1000 one f32 ulp of the argument is 6e-5.
  Float32Arguments,
  // Wan: positions and frequencies in float64 throughout.
  Float64,
};

// One row of `dim` values per entry of `values` (already multiplied by the family's factor).
std::vector<float> timestep_embedding(std::span<const float> values, int64_t dim, EmbeddingArithmetic arithmetic,
                                      double max_period = 10000.0);

// diffusers' `Timesteps(scale=...)` (Qwen-Image: σ in, scale 1000): f32 throughout, the scale
// applied after the product, f32((value·f_k)·scale). At σ·1000 ≈ 1000 this rounds differently
// from (1000·σ)·f_k by up to an ulp of the argument.
std::vector<float> scaled_timestep_embedding(std::span<const float> values, int64_t dim, float scale,
                                             double max_period = 10000.0);

}  // namespace ditrun::models
