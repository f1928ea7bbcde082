#include "models/vae/vae_tiling.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "models/vae/vae_layout.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"

namespace ditrun::models::vae {
namespace {

// Latent positions per side of the two probe decodes: peak = fixed + per-position · area, the
// fixed part (attention tiles, norm statistics) told apart from the part that scales.
constexpr int64_t kProbeSmall = 8, kProbeLarge = 16;

// Tile origins along an axis of `size` positions: as few tiles as cover it with at least
// `overlap` positions shared by neighbours, spread evenly (every overlap about the same, so
// every seam blends over about the same width).
std::vector<int64_t> origins(int64_t size, int64_t tile, int64_t overlap) {
  if (tile >= size) return {0};
  const int64_t n = (size - overlap + (tile - overlap) - 1) / (tile - overlap);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(i * (size - tile) / (n - 1));
  return out;
}

// Blend weight of pixel p of a tile spanning [begin, end) pixels: a linear ramp over `ramp`
// pixels at each edge that meets another tile, 1 elsewhere (never 0, so every pixel counts).
float ramp_weight(int64_t p, int64_t begin, int64_t end, int64_t total, int64_t ramp) {
  float w = 1.0f;
  if (begin > 0 && p - begin < ramp) w = std::min(w, float(p - begin + 1) / float(ramp + 1));
  if (end < total && end - p <= ramp) w = std::min(w, float(end - p) / float(ramp + 1));
  return w;
}

}  // namespace

uint64_t DecodeFootprint::peak_bytes(int64_t h, int64_t w) const {
  return weight_bytes + uint64_t(std::ceil(std::max(0.0, fixed_bytes + bytes_per_position * double(h) * double(w))));
}

DecodeFootprint measure_decode_footprint(const VaeSource& source, const std::string& path, double element_bytes) {
  auto backend = runtime::make_cpu_backend({});
  auto vae = make_vae(source.config, *backend, *source.weights, path);
  const int64_t c = source.config.latent_channels();
  const auto peak_of = [&](int64_t side) {
    const HostTensor z(source.config.video() ? Shape{1, c, 3, side, side} : Shape{1, c, side, side});
    backend->reset_peak_memory();
    const uint64_t before = backend->memory_stats().in_use_bytes;
    vae->decode(z);
    return double(backend->memory_stats().peak_bytes - before) * element_bytes / 4.0;
  };
  peak_of(kProbeSmall);  // loads the weights (a backend may charge them): not part of the activations
  const double small = peak_of(kProbeSmall), large = peak_of(kProbeLarge);
  DecodeFootprint f;
  f.bytes_per_position = (large - small) / double(kProbeLarge * kProbeLarge - kProbeSmall * kProbeSmall);
  f.fixed_bytes = large - f.bytes_per_position * double(kProbeLarge * kProbeLarge);
  f.element_bytes = element_bytes;
  for (const auto& t : vae_tensor_layout(source.config)) {
    if (t.name.starts_with("encoder.") || t.name.starts_with("conv1.")) continue;
    const Weight* w = source.weights->find(t.name);
    if (w) f.weight_bytes += w->bytes.size();
  }
  return f;
}

std::string TileGrid::str() const {
  return whole() ? "whole" : fmt::format("{}x{} latent tiles, overlap {}", tile_w, tile_h, overlap);
}

TileGrid tiles_for_budget(const DecodeFootprint& f, int64_t h, int64_t w, uint64_t budget, int64_t overlap) {
  if (budget == 0 || f.peak_bytes(h, w) <= budget) return {};
  constexpr int64_t kMinTile = 16;
  const double room = double(budget) - double(f.weight_bytes) - std::max(0.0, f.fixed_bytes);
  const int64_t side = room > 0 ? int64_t(std::sqrt(room / f.bytes_per_position)) / 8 * 8 : 0;
  if (side < std::max(kMinTile, 2 * overlap))
    fail("decoding needs {:.0f} MiB for its weights and a {}x{} tile; the budget is {:.0f} MiB",
         double(f.peak_bytes(kMinTile, kMinTile)) / 1048576.0, kMinTile, kMinTile, double(budget) / 1048576.0);
  return {std::min(side, h), std::min(side, w), overlap};
}

HostTensor decode_tiled(Vae& vae, const HostTensor& z, const TileGrid& grid) {
  if (grid.whole()) return vae.decode(z);
  const bool video = z.shape.size() == 5;
  const int64_t c = z.shape[1], frames = video ? z.shape[2] : 1, h = z.shape[video ? 3 : 2], w = z.shape[video ? 4 : 3];
  if (z.shape[0] != 1) fail("decode_tiled: one latent at a time, got {}", shape_string(z.shape));
  const int64_t stride = vae.config().spatial_stride(), ramp = grid.overlap * stride;
  HostTensor sum, weight;
  const int64_t out_h = h * stride, out_w = w * stride;
  for (int64_t y0 : origins(h, grid.tile_h, grid.overlap)) {
    for (int64_t x0 : origins(w, grid.tile_w, grid.overlap)) {
      const int64_t th = std::min(grid.tile_h, h), tw = std::min(grid.tile_w, w);
      HostTensor tile(video ? Shape{1, c, frames, th, tw} : Shape{1, c, th, tw});
      for (int64_t ci = 0; ci < c * frames; ++ci)
        for (int64_t y = 0; y < th; ++y)
          std::copy_n(z.data.begin() + (ci * h + y0 + y) * w + x0, tw, tile.data.begin() + (ci * th + y) * tw);
      const HostTensor pixels = vae.decode(tile);
      const int64_t pc = pixels.shape[1], pf = video ? pixels.shape[2] : 1;
      const int64_t ph = pixels.shape[video ? 3 : 2], pw = pixels.shape[video ? 4 : 3];
      if (sum.shape.empty()) {
        const Shape s = video ? Shape{1, pc, pf, out_h, out_w} : Shape{1, pc, out_h, out_w};
        sum = HostTensor(s);
        weight = HostTensor(Shape{out_h, out_w});
      }
      const int64_t py0 = y0 * stride, px0 = x0 * stride;
      for (int64_t y = 0; y < ph; ++y) {
        const float wy = ramp_weight(py0 + y, py0, py0 + ph, out_h, ramp);
        for (int64_t x = 0; x < pw; ++x) {
          const float wt = wy * ramp_weight(px0 + x, px0, px0 + pw, out_w, ramp);
          weight.data[size_t((py0 + y) * out_w + px0 + x)] += wt;
          for (int64_t k = 0; k < pc * pf; ++k)
            sum.data[size_t((k * out_h + py0 + y) * out_w + px0 + x)] += wt * pixels.data[size_t((k * ph + y) * pw + x)];
        }
      }
    }
  }
  const int64_t plane = out_h * out_w;
  for (int64_t k = 0; k < sum.numel() / plane; ++k)
    for (int64_t p = 0; p < plane; ++p) sum.data[size_t(k * plane + p)] /= weight.data[size_t(p)];
  return sum;
}

}  // namespace ditrun::models::vae
