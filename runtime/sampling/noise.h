// The initial latent noise of a job: standard normal values that are a pure function of
// (seed, element index), so that one seed gives the same picture on any backend, thread
// count, rank count or chunking, and another implementation can reproduce it exactly.
//
// Definition. For a latent of N elements in row-major order, element i takes pair index
// p = floor(i / 2). Philox4x32-10 (Salmon et al., SC'11; Random123's philox4x32 with 10
// rounds, multipliers 0xD2511F53 / 0xCD9E8D57, key increments 0x9E3779B9 / 0xBB67AE85) is
// evaluated with
//     key     = {seed & 0xFFFFFFFF, seed >> 32}
//     counter = {p & 0xFFFFFFFF, p >> 32, 0, 0}
// giving 32-bit words {r0, r1, r2, r3}. Two uniforms in (0, 1] (never 0, so the log below
// is finite), each from 53 bits of a 64-bit word:
//     u1 = (((uint64(r1) << 32 | r0) >> 11) + 1) · 2^-53
//     u2 = (((uint64(r3) << 32 | r2) >> 11) + 1) · 2^-53
// Box–Muller in double: ρ = sqrt(−2·ln u1), θ = 2π·u2;
//     element 2p   = float(ρ·cos θ),   element 2p+1 = float(ρ·sin θ)
// (rounded to nearest float). The last element of an odd-sized latent uses the cos half.
// log, cos and sin are the C library's double functions; a libm that differs from glibc by
// an ulp in double changes a float result only when that ulp straddles a float rounding
// boundary (about one element in 10^8).
//
// ditrun's noise is its own: it does not reproduce PyTorch's torch.randn for a seed. To
// start from another program's noise, pass it as a noise file
// (models/pipeline/noise_file.h; it lives in models/ because it reads safetensors).
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "runtime/core/shape.h"
#include "runtime/core/tensor.h"

namespace ditrun::runtime {

// One Philox4x32-10 block, exposed for its known-answer test.
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// Elements [first, first + out.size()) of the seed's noise stream: any split of a latent
// into ranges gives the same values as generating it whole.
void seeded_noise_range(uint64_t seed, uint64_t first, std::span<float> out);

// A whole latent of `shape` (row-major) filled with the seed's noise. Fails on a shape with
// a negative dim. Uses the host's cores; the values do not depend on how many.
HostTensor seeded_noise(uint64_t seed, const Shape& shape);

}  // namespace ditrun::runtime
