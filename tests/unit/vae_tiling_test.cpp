// Bounded-memory decoding on the CPU with the built-in tiny VAEs (synthetic weights): the
// measured footprint predicts a whole decode's peak (and a tile's), the grid chosen for a
// budget keeps the tiled decode under it, and tiled pictures agree with whole ones within the
// documented tolerance (docs/vae.md: tiles decode alone, so Flux's group norms see per-tile
// statistics and every conv near a tile edge sees zeros; the ramps hide the seams).
#include <gtest/gtest.h>

#include <cmath>

#include "models/vae/vae_synth.h"
#include "models/vae/vae_tiling.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun::models::vae {
namespace {

struct Opened {
  std::string path;
  VaeSource source;
  std::unique_ptr<runtime::Backend> backend;
  std::unique_ptr<Vae> vae;
};

Opened open_tiny(const std::string& name) {
  Opened o;
  o.path = test::temp_dir("vae-tiling") + "/" + name + ".safetensors";
  write_synthetic_vae(tiny_vae_preset(name), 0, o.path);
  o.source = open_vae(o.path, std::nullopt);
  o.backend = runtime::make_cpu_backend({});
  o.vae = make_vae(o.source.config, *o.backend, *o.source.weights, o.path);
  return o;
}

HostTensor latent(const VaeConfig& c, int64_t frames, int64_t h, int64_t w) {
  HostTensor z(c.video() ? Shape{1, c.latent_channels(), frames, h, w} : Shape{1, c.latent_channels(), h, w});
  uint64_t s = 1;
  for (float& v : z.data) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = float(int((s >> 33) % 2001) - 1000) / 500.0f;
  }
  return z;
}

struct Diff {
  double max = 0, mean = 0;
};
Diff diff(const HostTensor& a, const HostTensor& b) {
  Diff d;
  EXPECT_EQ(a.shape, b.shape);
  for (size_t i = 0; i < a.data.size() && i < b.data.size(); ++i) {
    const double e = std::fabs(double(a.data[i]) - b.data[i]);
    d.max = std::max(d.max, e);
    d.mean += e / double(a.data.size());
  }
  return d;
}

class Tiling : public testing::TestWithParam<std::string> {};

TEST_P(Tiling, FootprintPredictsThePeakAndTheBudgetHolds) {
  Opened o = open_tiny(GetParam());
  const DecodeFootprint f = measure_decode_footprint(o.source, o.path, 4);
  const HostTensor z = latent(o.source.config, 3, 40, 32);
  o.vae->decode(z);  // weights loaded (the CPU backend charges them, as the footprint counts them)
  o.backend->reset_peak_memory();
  o.vae->decode(z);
  const double measured = double(o.backend->memory_stats().peak_bytes);
  EXPECT_NEAR(double(f.peak_bytes(40, 32)) / measured, 1.0, 0.03) << "measured " << measured;

  // A budget of half the whole decode: tiles, and the tiled decode stays under it.
  const uint64_t budget = uint64_t(measured / 2);
  const TileGrid grid = tiles_for_budget(f, 40, 32, budget);
  ASSERT_FALSE(grid.whole());
  EXPECT_EQ(grid.tile_h % 8, 0);
  EXPECT_LE(f.peak_bytes(grid.tile_h, grid.tile_w), budget);
  o.backend->reset_peak_memory();
  decode_tiled(*o.vae, z, grid);
  EXPECT_LE(o.backend->memory_stats().peak_bytes, budget);

  EXPECT_TRUE(tiles_for_budget(f, 40, 32, uint64_t(measured * 1.1)).whole());
  EXPECT_THROW(tiles_for_budget(f, 40, 32, f.peak_bytes(8, 8)), Error);
}

TEST_P(Tiling, TiledAgreesWithWholeWithinTheDocumentedTolerance) {
  Opened o = open_tiny(GetParam());
  const HostTensor z = latent(o.source.config, 1, 64, 64);  // tiles are spatial: one frame shows it
  const HostTensor whole = o.vae->decode(z);
  // One tile covering everything is the whole decode, bit for bit.
  EXPECT_EQ(decode_tiled(*o.vae, z, {64, 64, 8}).data, whole.data);
  // Measured on these tiny random VAEs: mean 0.009 / max 0.11 (Flux), 0.008 / 0.17 (Wan) for
  // outputs of rms ~0.55; real VAEs with 64+ position tiles differ far less.
  const Diff d = diff(decode_tiled(*o.vae, z, {48, 48, 16}), whole);
  EXPECT_LT(d.mean, 0.015);
  EXPECT_LT(d.max, 0.25);
}

INSTANTIATE_TEST_SUITE_P(TinyVaes, Tiling, testing::Values("flux-ae-tiny", "wan21-vae-tiny"), [](const auto& info) {
  std::string s = info.param;
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
});

}  // namespace
}  // namespace ditrun::models::vae
