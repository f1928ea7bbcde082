// VAE configs: names, the reference-config schema, the released constants and detection.
#include "models/vae/vae_config.h"

#include <algorithm>
#include <map>
#include <set>

#include "runtime/core/error.h"

namespace ditrun::models::vae {
namespace {

// The released latent statistics (Wan's `WanVAE` / `Wan2_2_VAE` wrappers).
const std::vector<double> kWan21Mean{-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921};
const std::vector<double> kWan21Std{2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.916};
const std::vector<double> kWan22Mean{-0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813, 0.0891, 0.157, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502, -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.123, -0.0313, -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.052, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667};
const std::vector<double> kWan22Std{0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.499, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901, 0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659, 0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944, 0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.06, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744};

template <class T>
void read(const nlohmann::json& params, const char* key, T& out, const std::string& source) {
  if (!params.contains(key)) return;
  try {
    out = params.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail("{}: params.{} has the wrong type ({})", source, key, params.at(key).dump());
  }
}

bool has_name(const std::vector<NamedShape>& t, std::string_view name) {
  return std::any_of(t.begin(), t.end(), [&](const NamedShape& s) { return s.name == name; });
}
bool has_prefix(const std::vector<NamedShape>& t, std::string_view prefix) {
  return std::any_of(t.begin(), t.end(), [&](const NamedShape& s) { return s.name.starts_with(prefix); });
}

// The distinct indices N of names "<prefix>N.<rest>".
std::set<int64_t> indices(const std::vector<NamedShape>& t, std::string_view prefix) {
  std::set<int64_t> out;
  for (const auto& s : t) {
    if (!s.name.starts_with(prefix)) continue;
    const std::string rest = s.name.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos) continue;
    if (!std::all_of(rest.begin(), rest.begin() + long(dot), [](char c) { return c >= '0' && c <= '9'; })) continue;
    out.insert(std::stoll(rest.substr(0, dot)));
  }
  return out;
}

class Shapes {
 public:
  Shapes(const std::vector<NamedShape>& t, const std::string& source) : source_(source) {
    for (const auto& s : t) by_name_.emplace(s.name, s.shape);
  }
  bool has(const std::string& name) const { return by_name_.count(name) > 0; }
  int64_t dim(const std::string& name, size_t d) const {
    const auto it = by_name_.find(name);
    if (it == by_name_.end()) fail("{}: cannot detect the VAE: no tensor '{}'", source_, name);
    if (d >= it->second.size()) fail("{}: cannot detect the VAE: tensor '{}' has too few dims", source_, name);
    return it->second[d];
  }

 private:
  std::map<std::string, formats::Shape> by_name_;
  const std::string& source_;
};

VaeConfig detect_flux(const std::vector<NamedShape>& t, const std::string& source) {
  const Shapes s(t, source);
  VaeConfig c;
  c.kind = VaeKind::FluxAE;
  FluxAeParams& p = c.flux;
  const auto levels = indices(t, "decoder.up.");
  if (levels.empty()) fail("{}: cannot detect the VAE: no decoder.up.N levels", source);
  const int64_t n = int64_t(levels.size());
  p.z_channels = s.dim("decoder.conv_in.weight", 1);
  p.out_ch = s.dim("decoder.conv_out.weight", 0);
  p.ch = s.has("encoder.conv_in.weight") ? s.dim("encoder.conv_in.weight", 0) : s.dim("decoder.conv_out.weight", 1);
  if (s.has("encoder.conv_in.weight")) p.in_channels = s.dim("encoder.conv_in.weight", 1);
  p.ch_mult.clear();
  for (int64_t i = 0; i < n; ++i)
    p.ch_mult.push_back(s.dim("decoder.up." + std::to_string(i) + ".block.0.conv2.weight", 0) / p.ch);
  p.num_res_blocks = int64_t(indices(t, "decoder.up.0.block.").size()) - 1;
  return c;
}

VaeConfig detect_wan(const std::vector<NamedShape>& t, bool v22, const std::string& source) {
  const Shapes s(t, source);
  VaeConfig c = vae_preset(v22 ? "wan2.2-vae" : "wan2.1-vae");
  WanVaeParams& p = c.wan;
  p.z_dim = s.dim("decoder.conv1.weight", 1);
  p.dec_dim = s.dim("decoder.head.2.weight", 1);
  p.dim = s.has("encoder.conv1.weight") ? s.dim("encoder.conv1.weight", 0) : p.dec_dim;
  if (!v22) p.dec_dim = p.dim;
  const auto stages = indices(t, "decoder.upsamples.");
  if (v22) {
    const int64_t n = int64_t(stages.size());
    p.num_res_blocks = int64_t(indices(t, "decoder.upsamples.0.upsamples.").size()) - 2;
    p.dim_mult.assign(size_t(n), 1);
    p.temperal_downsample.assign(size_t(n - 1), false);
    for (int64_t i = 0; i < n; ++i) {
      const std::string stage = "decoder.upsamples." + std::to_string(i) + ".upsamples.";
      p.dim_mult[size_t(n - 1 - i)] = s.dim(stage + "0.residual.2.weight", 0) / p.dec_dim;
      if (i < n - 1)
        p.temperal_downsample[size_t(n - 2 - i)] =
            s.has(stage + std::to_string(p.num_res_blocks + 1) + ".time_conv.weight");
    }
  } else {
    // Flat: each stage num_res_blocks+1 blocks and a Resample, the last stage no Resample.
    const int64_t flat = int64_t(stages.size());
    int64_t resamples = 0;
    for (int64_t i : stages) resamples += s.has("decoder.upsamples." + std::to_string(i) + ".resample.1.weight");
    const int64_t n = resamples + 1, nrb = (flat + 1) / n - 2;
    if (nrb < 1 || n * (nrb + 2) - 1 != flat)
      fail("{}: cannot detect the VAE: {} decoder.upsamples entries with {} resamplers fit no stage layout", source, flat,
           resamples);
    p.num_res_blocks = nrb;
    p.dim_mult.assign(size_t(n), 1);
    p.temperal_downsample.assign(size_t(n - 1), false);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t first = i * (nrb + 2);
      p.dim_mult[size_t(n - 1 - i)] = s.dim("decoder.upsamples." + std::to_string(first) + ".residual.2.weight", 0) / p.dim;
      if (i < n - 1)
        p.temperal_downsample[size_t(n - 2 - i)] =
            s.has("decoder.upsamples." + std::to_string(first + nrb + 1) + ".time_conv.weight");
    }
  }
  // A z_dim no release has: its latent statistics must come from a sidecar (validate says so).
  if (p.z_dim != int64_t(p.latent_mean.size())) {
    p.latent_mean.clear();
    p.latent_std.clear();
  }
  return c;
}

}  // namespace

std::string_view vae_kind_name(VaeKind k) {
  switch (k) {
    case VaeKind::FluxAE: return "flux-ae";
    case VaeKind::Wan21: return "wan21-vae";
    case VaeKind::Wan22: return "wan22-vae";
  }
  return "?";
}

std::optional<VaeKind> vae_kind_from_name(std::string_view name) {
  for (VaeKind k : {VaeKind::FluxAE, VaeKind::Wan21, VaeKind::Wan22})
    if (vae_kind_name(k) == name) return k;
  return std::nullopt;
}

int64_t VaeConfig::temporal_levels() const {
  if (!video()) return 0;
  return std::count(wan.temperal_downsample.begin(), wan.temperal_downsample.end(), true);
}

int64_t VaeConfig::spatial_stride() const {
  const int64_t levels = int64_t(kind == VaeKind::FluxAE ? flux.ch_mult.size() : wan.dim_mult.size()) - 1;
  return (int64_t(1) << std::max<int64_t>(levels, 0)) * patch_size();
}

nlohmann::json VaeConfig::to_json() const {
  nlohmann::json j;
  j["architecture"] = name();
  if (kind == VaeKind::FluxAE) {
    j["params"] = {{"resolution", flux.resolution},         {"in_channels", flux.in_channels},
                   {"ch", flux.ch},                         {"out_ch", flux.out_ch},
                   {"ch_mult", flux.ch_mult},               {"num_res_blocks", flux.num_res_blocks},
                   {"z_channels", flux.z_channels},         {"scale_factor", flux.scale_factor},
                   {"shift_factor", flux.shift_factor}};
    return j;
  }
  j["params"] = {{"dim", wan.dim},
                 {"z_dim", wan.z_dim},
                 {"dim_mult", wan.dim_mult},
                 {"num_res_blocks", wan.num_res_blocks},
                 {"attn_scales", nlohmann::json::array()},
                 {"temperal_downsample", wan.temperal_downsample},
                 {"dropout", 0.0}};
  if (kind == VaeKind::Wan22) j["params"]["dec_dim"] = wan.dec_dim;
  j["latent_mean"] = wan.latent_mean;
  j["latent_std"] = wan.latent_std;
  return j;
}

VaeConfig VaeConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object() || !j.contains("architecture") || !j.at("architecture").is_string())
    fail("{}: no \"architecture\" string", source);
  const std::string arch = j.at("architecture").get<std::string>();
  const auto kind = vae_kind_from_name(arch);
  if (!kind) fail("{}: architecture '{}' is not a VAE (flux-ae, wan21-vae, wan22-vae)", source, arch);
  VaeConfig c = vae_preset(*kind == VaeKind::FluxAE ? "flux-ae" : *kind == VaeKind::Wan21 ? "wan2.1-vae" : "wan2.2-vae");
  const nlohmann::json params = j.value("params", nlohmann::json::object());
  if (!params.is_object()) fail("{}: \"params\" is not an object", source);
  if (c.kind == VaeKind::FluxAE) {
    read(params, "resolution", c.flux.resolution, source);
    read(params, "in_channels", c.flux.in_channels, source);
    read(params, "ch", c.flux.ch, source);
    read(params, "out_ch", c.flux.out_ch, source);
    read(params, "ch_mult", c.flux.ch_mult, source);
    read(params, "num_res_blocks", c.flux.num_res_blocks, source);
    read(params, "z_channels", c.flux.z_channels, source);
    read(params, "scale_factor", c.flux.scale_factor, source);
    read(params, "shift_factor", c.flux.shift_factor, source);
  } else {
    read(params, "dim", c.wan.dim, source);
    c.wan.dec_dim = c.wan.dim;
    read(params, "dec_dim", c.wan.dec_dim, source);
    read(params, "z_dim", c.wan.z_dim, source);
    read(params, "dim_mult", c.wan.dim_mult, source);
    read(params, "num_res_blocks", c.wan.num_res_blocks, source);
    read(params, "temperal_downsample", c.wan.temperal_downsample, source);
    if (params.contains("attn_scales") && !params.at("attn_scales").empty())
      fail("{}: params.attn_scales: attention outside the middle block is not in the released Wan VAEs", source);
    read(j, "latent_mean", c.wan.latent_mean, source);
    read(j, "latent_std", c.wan.latent_std, source);
  }
  c.validate(source);
  return c;
}

void VaeConfig::validate(const std::string& source) const {
  if (kind == VaeKind::FluxAE) {
    const FluxAeParams& p = flux;
    if (p.ch < 1 || p.ch_mult.empty() || p.num_res_blocks < 1 || p.z_channels < 1 || p.in_channels < 1 || p.out_ch < 1)
      fail("{}: params: ch, ch_mult, num_res_blocks, z_channels and the image channels must be positive", source);
    for (int64_t m : p.ch_mult)
      if (m < 1 || (p.ch * m) % 32 != 0)
        fail("{}: params.ch_mult: ch·{} is not a positive multiple of the 32 norm groups", source, m);
    if (p.scale_factor == 0) fail("{}: params.scale_factor is 0", source);
    return;
  }
  const WanVaeParams& p = wan;
  if (p.dim < 1 || p.dec_dim < 1 || p.z_dim < 1 || p.num_res_blocks < 1 || p.dim_mult.size() < 2)
    fail("{}: params: dim, dec_dim, z_dim, num_res_blocks must be positive and dim_mult have 2 or more stages", source);
  if (p.temperal_downsample.size() != p.dim_mult.size() - 1)
    fail("{}: params.temperal_downsample has {} entries for {} stages (one per downsampling stage)", source,
         p.temperal_downsample.size(), p.dim_mult.size());
  if (int64_t(p.latent_mean.size()) != p.z_dim || int64_t(p.latent_std.size()) != p.z_dim)
    fail("{}: latent_mean and latent_std need {} values each (z_dim), have {} and {}", source, p.z_dim,
         p.latent_mean.size(), p.latent_std.size());
  for (double s : p.latent_std)
    if (!(s > 0)) fail("{}: latent_std holds {}, not a positive number", source, s);
  if (kind == VaeKind::Wan21)
    for (size_t i = 1; i + 1 < p.dim_mult.size(); ++i)
      if ((p.dim * p.dim_mult[p.dim_mult.size() - i]) % 2 != 0)
        fail("{}: params: Wan 2.1's upsamplers halve the channels, dim·dim_mult must be even", source);
}

VaeConfig vae_preset(std::string_view name) {
  VaeConfig c;
  if (name == "flux-ae") return c;
  if (name == "sd3.5-vae") {
    c.flux.scale_factor = 1.5305;
    c.flux.shift_factor = 0.0609;
    return c;
  }
  if (name == "wan2.1-vae") {
    c.kind = VaeKind::Wan21;
    c.wan.latent_mean = kWan21Mean;
    c.wan.latent_std = kWan21Std;
    return c;
  }
  if (name == "wan2.2-vae") {
    c.kind = VaeKind::Wan22;
    c.wan.dim = 160;
    c.wan.dec_dim = 256;
    c.wan.z_dim = 48;
    c.wan.latent_mean = kWan22Mean;
    c.wan.latent_std = kWan22Std;
    return c;
  }
  fail("unknown VAE preset '{}' (flux-ae, sd3.5-vae, wan2.1-vae, wan2.2-vae)", name);
}

bool looks_like_vae(const std::vector<NamedShape>& t) {
  return has_name(t, "decoder.mid.attn_1.q.weight") || has_name(t, "decoder.middle.1.to_qkv.weight");
}

VaeConfig detect_vae(const std::vector<NamedShape>& t, const std::string& source) {
  if (has_name(t, "decoder.mid.attn_1.q.weight")) return detect_flux(t, source);
  if (has_name(t, "decoder.middle.1.to_qkv.weight"))
    return detect_wan(t, has_prefix(t, "decoder.upsamples.0.upsamples."), source);
  fail("{}: cannot detect the VAE: no Flux (decoder.mid.attn_1) or Wan (decoder.middle.1) decoder tensors", source);
}

}  // namespace ditrun::models::vae
