// The architecture of a VAE: which design (BFL's Flux autoencoder, Wan 2.1's causal video
// VAE, Wan 2.2's patchified one), the official constructor arguments, and the latent
// normalisation that maps between the VAE's latent and the diffusion model's.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/arch/detect.h"

namespace ditrun::models::vae {

enum class VaeKind { FluxAE, Wan21, Wan22 };

// "flux-ae", "wan21-vae", "wan22-vae": the reference configs' `architecture` values.
std::string_view vae_kind_name(VaeKind k);
std::optional<VaeKind> vae_kind_from_name(std::string_view name);

// BFL `AutoEncoderParams`; defaults = the released `ae.safetensors` (Flux.1), whose scale and
// shift SD3.5's VAE replaces with its own (vae_for_family).
struct FluxAeParams {
  int64_t resolution = 256, in_channels = 3, ch = 128, out_ch = 3;
  std::vector<int64_t> ch_mult{1, 2, 4, 4};
  int64_t num_res_blocks = 2, z_channels = 16;
  double scale_factor = 0.3611, shift_factor = 0.1159;
  bool operator==(const FluxAeParams&) const = default;
};

// Wan `WanVAE_.__init__` arguments (dec_dim only in 2.2) and the wrapper's latent mean/std;
// defaults = the released Wan 2.1 VAE.
struct WanVaeParams {
  int64_t dim = 96, dec_dim = 96, z_dim = 16;
  std::vector<int64_t> dim_mult{1, 2, 4, 4};
  int64_t num_res_blocks = 2;
  std::vector<bool> temperal_downsample{false, true, true};
  std::vector<double> latent_mean, latent_std;  // z_dim each
  bool operator==(const WanVaeParams&) const = default;
};

struct VaeConfig {
  VaeKind kind = VaeKind::FluxAE;
  FluxAeParams flux;  // kind FluxAE
  WanVaeParams wan;   // kind Wan21 / Wan22

  std::string name() const { return std::string(vae_kind_name(kind)); }
  bool video() const { return kind != VaeKind::FluxAE; }
  int64_t latent_channels() const { return kind == VaeKind::FluxAE ? flux.z_channels : wan.z_dim; }
  // Pixels per latent position: spatial (8 Flux/Wan 2.1, 16 Wan 2.2; the tiny models' fewer
  // levels give less) and temporal (4 for the Wan VAEs: T latent frames are 1+4(T−1) frames).
  int64_t spatial_stride() const;
  int64_t temporal_stride() const { return video() ? int64_t(1) << temporal_levels() : 1; }
  int64_t temporal_levels() const;  // the stages that halve time
  int64_t patch_size() const { return kind == VaeKind::Wan22 ? 2 : 1; }
  int64_t image_channels() const { return kind == VaeKind::FluxAE ? flux.out_ch : 3; }

  // {"architecture", "params", ...} as the reference configs write it (Wan: latent_mean/std
  // beside params).
  nlohmann::json to_json() const;
  // The reference configs' schema; missing params take the release defaults. Fails with a
  // one-line ditrun::Error naming `source` and the field.
  static VaeConfig from_json(const nlohmann::json& j, const std::string& source);
  // Fails "<source>: ..." when the params cannot build a model (levels, channels, mean/std count).
  void validate(const std::string& source) const;
};

// The released VAEs with their constants: "flux-ae" (Flux.1), "sd3.5-vae" (Flux's design with
// SD3.5's scale 1.5305 / shift 0.0609), "wan2.1-vae", "wan2.2-vae" (TI2V-5B).
VaeConfig vae_preset(std::string_view name);

using arch::NamedShape;  // a tensor's name and PyTorch shape
// True when the tensor names are a VAE's (encoder./decoder. with a Flux or Wan layout).
bool looks_like_vae(const std::vector<NamedShape>& tensors);
// The design from the names and every param the shapes determine (channels, levels, blocks,
// z); constants (scale/shift, mean/std) are the release's of that design. Fails with
// "<source>: cannot detect the VAE: ...".
VaeConfig detect_vae(const std::vector<NamedShape>& tensors, const std::string& source);

}  // namespace ditrun::models::vae
