// Rotary-embedding tables (models.md §0.3): for every token, the (cos, sin) of the angle of
// every adjacent pair of a head, laid out [tokens, D] as cos0, sin0, cos1, sin1, ...
// The pairs are split into consecutive axis groups; pair k of an axis of real width d_a
// turns by pos_axis · theta^(−2k/d_a). Angles are computed in double (as BFL's and Wan's
// reference code do) and rounded to f32 once. Tables are model inputs built on the host:
// they depend only on token positions, and a host table is identical on every backend.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ditrun::models {

// positions: [tokens, axes.size()] (float positions, as Flux's ids are). Returns [tokens, D],
// D = sum(axes).
std::vector<float> rope_table(std::span<const float> positions, std::span<const int64_t> axes, double theta);

// The same table as diffusers' Qwen-Image `QwenEmbedRope` computes it, in f32: ω = 1/θ^(2k/d)
// rounded to f32, the angle f32(position·ω). At text positions near 1000 the f32 angle differs
// from the double one by up to 6e-5, so matching the official tables needs this arithmetic.
std::vector<float> rope_table_f32(std::span<const float> positions, std::span<const int64_t> axes, double theta);

// Positions of a (frames × rows × cols) token grid in row-major order, from 0: (f, r, c).
std::vector<float> grid_positions(int64_t frames, int64_t rows, int64_t cols);

}  // namespace ditrun::models
