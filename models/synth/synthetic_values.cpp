#include "models/synth/synthetic_values.h"

#include <cmath>

namespace ditrun::synth {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in (0, 1]: 53 random bits, never 0 so the logarithm below is finite.
double unit(uint64_t bits) { return double((bits >> 11) + 1) * 0x1p-53; }

}  // namespace

uint64_t tensor_key(uint64_t seed, std::string_view tensor_name) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a over the name, then mixed with the seed
  for (unsigned char c : tensor_name) h = (h ^ c) * 0x100000001B3ull;
  return splitmix64(h ^ splitmix64(seed));
}

void normal_stream(uint64_t key, uint64_t first, std::span<float> out) {
  // Box-Muller on pairs: element 2p and 2p+1 share the uniforms of pair p.
  for (size_t i = 0; i < out.size(); ++i) {
    const uint64_t idx = first + i;
    const uint64_t pair = idx / 2;
    const double u1 = unit(splitmix64(key ^ (2 * pair)));
    const double u2 = unit(splitmix64(key ^ (2 * pair + 1)));
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double angle = 6.283185307179586 * u2;
    out[i] = float(idx % 2 == 0 ? r * std::cos(angle) : r * std::sin(angle));
  }
}

void synthetic_values(uint64_t seed, const arch::TensorSpec& spec, uint64_t first, std::span<float> out) {
  normal_stream(tensor_key(seed, spec.name), first, out);
  int64_t fan_in = 1;
  for (size_t d = 1; d < spec.shape.size(); ++d) fan_in *= spec.shape[d];
  float scale = 0.02f, offset = 0.0f;
  switch (spec.role) {
    case arch::TensorRole::LinearWeight:
    case arch::TensorRole::PatchEmbed:
      scale = float(1.0 / std::sqrt(double(std::max<int64_t>(fan_in, 1))));
      break;
    case arch::TensorRole::Modulation:
      scale = float(1.0 / std::sqrt(double(spec.shape.empty() ? 1 : spec.shape.back())));
      break;
    case arch::TensorRole::NormScale:
      scale = 0.1f;
      offset = 1.0f;
      break;
    case arch::TensorRole::Bias:
    case arch::TensorRole::PositionEmbed:
    case arch::TensorRole::Other:
      break;
  }
  for (float& v : out) v = offset + scale * v;
}

}  // namespace ditrun::synth
