// VAE decode on the CPU backend with synthetic full-size weights (the released architectures:
// Flux's AE at 1024², Wan 2.1's VAE per latent frame at 832×480): seconds, achieved GFLOP/s
// against the machine's OpenBLAS sgemm throughput (the physical limit of this backend), peak
// memory against the footprint's estimate (what tiling plans with), and tiled against untiled
// (the simplest alternative) in the same run.
//
//   ditrun_bench_vae [--skip-flux] [--skip-wan] [--wan-frames 2] [--tile 64] [--size 1024]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <random>

#include "bench/sgemm_limit.h"
#include "models/vae/vae_layout.h"
#include "models/vae/vae_synth.h"
#include "models/vae/vae_tiling.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/parallel.h"

using namespace ditrun;
using namespace ditrun::models::vae;
using bench::Clock;
using bench::seconds_since;

namespace {

// Multiply-adds ×2 of the Flux decoder's convs at a latent of h×w: each conv's weight times the
// positions of the level it runs at (an upsampler's conv runs after the ×2).
double flux_decoder_flops(const VaeConfig& c, int64_t h, int64_t w) {
  const int64_t levels = int64_t(c.flux.ch_mult.size());
  double flops = 0;
  for (const auto& t : vae_tensor_layout(c)) {
    if (!t.name.starts_with("decoder.") || t.shape.size() != 4) continue;
    int64_t scale = 1;  // pixels per latent position along a side, at this conv
    if (t.name.starts_with("decoder.up.")) {
      const int64_t level = std::stoll(t.name.substr(11));
      scale = int64_t(1) << (levels - 1 - level);
      if (t.name.find(".upsample.") != std::string::npos) scale *= 2;
    } else if (t.name.starts_with("decoder.conv_out")) {
      scale = int64_t(1) << (levels - 1);
    }
    flops += 2.0 * double(shape_numel(t.shape)) * double(h * scale) * double(w * scale);
  }
  return flops;
}

struct Run {
  double seconds = 0, peak_mib = 0;
};

Run decode_once(Vae& vae, runtime::Backend& backend, const HostTensor& z, const TileGrid& grid) {
  backend.reset_peak_memory();
  const auto t = Clock::now();
  decode_tiled(vae, z, grid);
  return {seconds_since(t), double(backend.memory_stats().peak_bytes) / 1048576.0};
}

void bench_decode(const std::string& label, const VaeConfig& config, int64_t frames, int64_t h, int64_t w, int64_t tile,
           double sgemm_gflops, double flops, const std::string& dir) {
  const std::string path = dir + "/" + config.name() + ".safetensors";
  write_synthetic_vae(config, 0, path);
  const VaeSource src = open_vae(path, std::nullopt);
  auto backend = runtime::make_cpu_backend({});
  auto vae = make_vae(src.config, *backend, *src.weights, path);
  const DecodeFootprint f = measure_decode_footprint(src, path, 4);
  HostTensor z(config.video() ? Shape{1, config.latent_channels(), frames, h, w} : Shape{1, config.latent_channels(), h, w});
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (float& v : z.data) v = nd(rng);

  fmt::print("\n{} ({} MiB of bf16 decoder weights), latent {}x{}{}:\n", label, f.weight_bytes >> 20, w, h,
             config.video() ? fmt::format(" x {} frames", frames) : "");
  const Run whole = decode_once(*vae, *backend, z, {});
  const double est_whole = double(f.peak_bytes(h, w)) / 1048576.0;
  const auto line = [&](const char* what, const Run& r, double est) {
    fmt::print("  {:<26} {:>8.2f} s", what, r.seconds);
    if (flops > 0) {
      const double gflops = flops / r.seconds / 1e9;
      fmt::print("  {:>7.1f} GFLOP/s = {:>5.1f}% of sgemm", gflops, 100 * gflops / sgemm_gflops);
    }
    fmt::print("  peak {:>7.1f} MiB, estimated {:>7.1f} (measured/estimated {:.3f})\n", r.peak_mib, est, r.peak_mib / est);
  };
  line("untiled", whole, est_whole);
  const TileGrid grid{std::min(tile, h), std::min(tile, w), 8};
  const Run tiled = decode_once(*vae, *backend, z, grid);
  line(fmt::format("tiled {}", grid.str()).c_str(), tiled, double(f.peak_bytes(grid.tile_h, grid.tile_w)) / 1048576.0);
  fmt::print("  tiled/untiled: time {:.2f}x, peak memory {:.2f}x\n", tiled.seconds / whole.seconds,
             tiled.peak_mib / whole.peak_mib);
  if (config.video() && frames > 1) {
    // The first latent frame decodes to one frame, every later one to four: time the first
    // alone, the rest is the steady cost per latent frame.
    HostTensor first(Shape{1, config.latent_channels(), 1, h, w});
    for (int64_t c = 0; c < config.latent_channels(); ++c)
      std::copy_n(z.data.begin() + c * frames * h * w, h * w, first.data.begin() + c * h * w);
    const Run one = decode_once(*vae, *backend, first, {});
    const double steady = (whole.seconds - one.seconds) / double(frames - 1);
    fmt::print("  first latent frame {:.1f} s, each later one {:.1f} s (4 frames); an 81-frame clip (21 latent frames) "
               "~ {:.0f} min untiled\n",
               one.seconds, steady, (one.seconds + 20 * steady) / 60);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("VAE decode benchmark (CPU backend, synthetic full-size weights)");
  bool skip_flux = false, skip_wan = false;
  int64_t wan_frames = 2, tile = 64, size = 1024;
  app.add_flag("--skip-flux", skip_flux);
  app.add_flag("--skip-wan", skip_wan);
  app.add_option("--wan-frames", wan_frames, "Latent frames of the Wan decode (the first is cheaper)")->capture_default_str();
  app.add_option("--tile", tile, "Tile side in latent positions for the tiled run")->capture_default_str();
  app.add_option("--size", size, "Flux image side in pixels")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::string dir = (std::filesystem::temp_directory_path() / fmt::format("ditrun-bench-vae-{}", ::getpid())).string();
  std::filesystem::create_directories(dir);
  const double sgemm = bench::measured_sgemm_gflops(4096, 512, 4608);  // a 3x3 conv of 512 channels over 4096 positions
  fmt::print("measured OpenBLAS sgemm 4096x512x4608 on {} threads: {:.1f} GFLOP/s (the limit below)\n", host_threads(),
             sgemm);
  if (!skip_flux) {
    const VaeConfig c = vae_preset("flux-ae");
    bench_decode(fmt::format("Flux AE decode {}x{}", size, size), c, 1, size / 8, size / 8, tile, sgemm,
          flux_decoder_flops(c, size / 8, size / 8), dir);
  }
  if (!skip_wan)
    bench_decode("Wan 2.1 VAE decode 832x480", vae_preset("wan2.1-vae"), wan_frames, 60, 104, tile, sgemm, 0, dir);
  std::filesystem::remove_all(dir);
}
