// Bounded-memory decoding: a latent cut into overlapping spatial tiles, each decoded alone and
// blended back with linear ramps across the overlap (videos keep their frame-by-frame causal
// pass inside each tile), with the tile size chosen so that a decode's peak memory fits a
// budget. The peak is measured, not modelled: every activation of a decode scales with the
// latent's area, so one probe decode of a small latent gives the bytes per latent position
// of the very code that runs.
#pragma once

#include <cstdint>
#include <string>

#include "models/vae/vae.h"
#include "models/vae/vae_source.h"

namespace ditrun::models::vae {

struct DecodeFootprint {
  double bytes_per_position = 0;  // peak activation bytes per latent position (of one frame)
  double fixed_bytes = 0;         // the peak's part that does not scale with the area
  double element_bytes = 4;       // of the activations the footprint was measured for
  uint64_t weight_bytes = 0;      // the decoder's weights as stored
  uint64_t peak_bytes(int64_t h, int64_t w) const;  // weights + activations of an h×w latent
};

// Decodes two probe latents (8×8 and 16×16 positions; 3 frames for a video, so the
// frame-by-frame pass reaches its steady state) on a CPU backend, fits fixed + per-position
// bytes, and scales to `element_bytes` (4 f32, 2 bf16).
DecodeFootprint measure_decode_footprint(const VaeSource& source, const std::string& path, double element_bytes);

struct TileGrid {
  int64_t tile_h = 0, tile_w = 0;  // latent positions per tile; 0: the whole latent in one piece
  int64_t overlap = 0;             // latent positions two neighbouring tiles share
  bool whole() const { return tile_h == 0; }
  std::string str() const;
};

// The largest square tiles (a multiple of 8 latent positions, at least 16) whose decode fits
// `budget_bytes`, with `overlap` positions shared between neighbours; whole when the latent
// fits as it is. Fails when not even the smallest tile fits.
TileGrid tiles_for_budget(const DecodeFootprint& footprint, int64_t h, int64_t w, uint64_t budget_bytes,
                          int64_t overlap = 8);

// decode() of z tile by tile (z [1, C, h, w] or [1, C, T, h, w]); the whole grid decodes in
// one piece.
HostTensor decode_tiled(Vae& vae, const HostTensor& z, const TileGrid& grid);

}  // namespace ditrun::models::vae
