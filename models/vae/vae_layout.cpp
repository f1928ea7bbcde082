#include "models/vae/vae_layout.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "runtime/core/error.h"

namespace ditrun::models::vae {
namespace {

class Layout {
 public:
  void add(const std::string& name, formats::Shape shape) { out.push_back({name, std::move(shape)}); }
  // A conv's weight [out, in, k...] and bias [out].
  void conv(const std::string& name, int64_t out_c, int64_t in_c, std::vector<int64_t> kernel) {
    formats::Shape s{out_c, in_c};
    s.insert(s.end(), kernel.begin(), kernel.end());
    add(name + ".weight", s);
    add(name + ".bias", {out_c});
  }
  std::vector<NamedShape> out;
};

void flux_resnet(Layout& l, const std::string& p, int64_t in, int64_t out) {
  l.add(p + ".norm1.weight", {in});
  l.add(p + ".norm1.bias", {in});
  l.conv(p + ".conv1", out, in, {3, 3});
  l.add(p + ".norm2.weight", {out});
  l.add(p + ".norm2.bias", {out});
  l.conv(p + ".conv2", out, out, {3, 3});
  if (in != out) l.conv(p + ".nin_shortcut", out, in, {1, 1});
}

void flux_middle(Layout& l, const std::string& p, int64_t c) {
  flux_resnet(l, p + ".block_1", c, c);
  l.add(p + ".attn_1.norm.weight", {c});
  l.add(p + ".attn_1.norm.bias", {c});
  for (const char* m : {"q", "k", "v", "proj_out"}) l.conv(p + ".attn_1." + m, c, c, {1, 1});
  flux_resnet(l, p + ".block_2", c, c);
}

std::vector<NamedShape> flux_layout(const FluxAeParams& p) {
  Layout l;
  const int64_t levels = int64_t(p.ch_mult.size());
  l.conv("encoder.conv_in", p.ch, p.in_channels, {3, 3});
  int64_t c = p.ch;
  for (int64_t i = 0; i < levels; ++i) {
    const int64_t out = p.ch * p.ch_mult[size_t(i)];
    for (int64_t j = 0; j < p.num_res_blocks; ++j, c = out) flux_resnet(l, fmt::format("encoder.down.{}.block.{}", i, j), c, out);
    if (i != levels - 1) l.conv(fmt::format("encoder.down.{}.downsample.conv", i), c, c, {3, 3});
  }
  flux_middle(l, "encoder.mid", c);
  l.add("encoder.norm_out.weight", {c});
  l.add("encoder.norm_out.bias", {c});
  l.conv("encoder.conv_out", 2 * p.z_channels, c, {3, 3});

  c = p.ch * p.ch_mult.back();
  l.conv("decoder.conv_in", c, p.z_channels, {3, 3});
  flux_middle(l, "decoder.mid", c);
  for (int64_t i = levels - 1; i >= 0; --i) {
    const int64_t out = p.ch * p.ch_mult[size_t(i)];
    for (int64_t j = 0; j <= p.num_res_blocks; ++j, c = out) flux_resnet(l, fmt::format("decoder.up.{}.block.{}", i, j), c, out);
    if (i != 0) l.conv(fmt::format("decoder.up.{}.upsample.conv", i), c, c, {3, 3});
  }
  l.add("decoder.norm_out.weight", {c});
  l.add("decoder.norm_out.bias", {c});
  l.conv("decoder.conv_out", p.out_ch, c, {3, 3});
  return l.out;
}

void wan_residual(Layout& l, const std::string& p, int64_t in, int64_t out) {
  l.add(p + ".residual.0.gamma", {in, 1, 1, 1});
  l.conv(p + ".residual.2", out, in, {3, 3, 3});
  l.add(p + ".residual.3.gamma", {out, 1, 1, 1});
  l.conv(p + ".residual.6", out, out, {3, 3, 3});
  if (in != out) l.conv(p + ".shortcut", out, in, {1, 1, 1});
}

void wan_middle(Layout& l, const std::string& p, int64_t c) {
  wan_residual(l, p + ".0", c, c);
  l.add(p + ".1.norm.gamma", {c, 1, 1});
  l.conv(p + ".1.to_qkv", 3 * c, c, {1, 1});
  l.conv(p + ".1.proj", c, c, {1, 1});
  wan_residual(l, p + ".2", c, c);
}

std::vector<NamedShape> wan_layout(const WanVaeParams& p, bool v22) {
  Layout l;
  const int64_t stages = int64_t(p.dim_mult.size());
  // Encoder: dims = dim·[1, dim_mult...].
  std::vector<int64_t> dims{p.dim};
  for (int64_t m : p.dim_mult) dims.push_back(p.dim * m);
  l.conv("encoder.conv1", dims[0], v22 ? 12 : 3, {3, 3, 3});
  int64_t flat = 0;
  for (int64_t i = 0; i < stages; ++i) {
    int64_t in = dims[size_t(i)];
    const int64_t out = dims[size_t(i) + 1];
    const std::string stage = v22 ? fmt::format("encoder.downsamples.{}.downsamples.", i) : "encoder.downsamples.";
    int64_t j = v22 ? 0 : flat;
    for (int64_t b = 0; b < p.num_res_blocks; ++b, ++j, in = out) wan_residual(l, stage + std::to_string(j), in, out);
    if (i != stages - 1) {
      l.conv(stage + std::to_string(j) + ".resample.1", out, out, {3, 3});
      if (p.temperal_downsample[size_t(i)]) l.conv(stage + std::to_string(j) + ".time_conv", out, out, {3, 1, 1});
      ++j;
    }
    flat = j;
  }
  wan_middle(l, "encoder.middle", dims.back());
  l.add("encoder.head.0.gamma", {dims.back(), 1, 1, 1});
  l.conv("encoder.head.2", 2 * p.z_dim, dims.back(), {3, 3, 3});
  l.conv("conv1", 2 * p.z_dim, 2 * p.z_dim, {1, 1, 1});
  l.conv("conv2", p.z_dim, p.z_dim, {1, 1, 1});

  // Decoder: dims = dec_dim·[dim_mult[-1], reversed dim_mult...]; 2.1's upsamplers halve C.
  std::vector<int64_t> ddims{p.dec_dim * p.dim_mult.back()};
  for (auto it = p.dim_mult.rbegin(); it != p.dim_mult.rend(); ++it) ddims.push_back(p.dec_dim * *it);
  l.conv("decoder.conv1", ddims[0], p.z_dim, {3, 3, 3});
  wan_middle(l, "decoder.middle", ddims[0]);
  flat = 0;
  for (int64_t i = 0; i < stages; ++i) {
    int64_t in = ddims[size_t(i)];
    if (!v22 && i > 0) in /= 2;
    const int64_t out = ddims[size_t(i) + 1];
    const std::string stage = v22 ? fmt::format("decoder.upsamples.{}.upsamples.", i) : "decoder.upsamples.";
    int64_t j = v22 ? 0 : flat;
    for (int64_t b = 0; b <= p.num_res_blocks; ++b, ++j, in = out) wan_residual(l, stage + std::to_string(j), in, out);
    if (i != stages - 1) {
      if (p.temperal_downsample[size_t(stages - 2 - i)])
        l.conv(stage + std::to_string(j) + ".time_conv", 2 * out, out, {3, 1, 1});
      l.conv(stage + std::to_string(j) + ".resample.1", v22 ? out : out / 2, out, {3, 3});
      ++j;
    }
    flat = j;
  }
  l.add("decoder.head.0.gamma", {ddims.back(), 1, 1, 1});
  l.conv("decoder.head.2", v22 ? 12 : 3, ddims.back(), {3, 3, 3});
  return l.out;
}

formats::Shape squeezed(const formats::Shape& s) {
  formats::Shape out;
  for (int64_t d : s)
    if (d != 1) out.push_back(d);
  return out;
}

}  // namespace

std::vector<NamedShape> vae_tensor_layout(const VaeConfig& config) {
  return config.kind == VaeKind::FluxAE ? flux_layout(config.flux) : wan_layout(config.wan, config.kind == VaeKind::Wan22);
}

void check_vae_tensors(const VaeConfig& config, const std::vector<NamedShape>& tensors, const std::string& source) {
  std::map<std::string, formats::Shape> have;
  for (const auto& t : tensors) have.emplace(t.name, t.shape);
  for (const auto& want : vae_tensor_layout(config)) {
    const auto it = have.find(want.name);
    if (it == have.end()) fail("{}: VAE tensor '{}' is missing for {}", source, want.name, config.name());
    if (squeezed(it->second) != squeezed(want.shape))
      fail("{}: VAE tensor '{}' has shape {}, {} needs {}", source, want.name, shape_string(it->second), config.name(),
           shape_string(want.shape));
    have.erase(it);
  }
  if (!have.empty()) fail("{}: tensor '{}' is not part of a {} VAE", source, have.begin()->first, config.name());
}

int64_t decoder_parameters(const VaeConfig& config) {
  int64_t n = 0;
  for (const auto& t : vae_tensor_layout(config))
    if (!t.name.starts_with("encoder.") && t.name.rfind("conv1.", 0) != 0) n += shape_numel(t.shape);
  return n;
}

}  // namespace ditrun::models::vae
