// The architecture of one diffusion transformer: which family, which released variant, the
// hyper-parameters its reference code is constructed with, and the sampler it is meant to run
// with. Everything downstream (tensor layout, planner, kernels, sampler) reads this.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace ditrun::arch {

enum class Family { Flux, Wan, QwenImage, SD3 };

// "flux", "wan", "qwen_image", "sd3": the GGUF general.architecture values (city96 IMG_ARCH_LIST).
std::string_view family_name(Family f);
std::optional<Family> family_from_name(std::string_view name);

// BFL `flux.model.FluxParams`; defaults = FLUX.1-dev.
struct FluxParams {
  int64_t in_channels = 64, out_channels = 64, vec_in_dim = 768, context_in_dim = 4096, hidden_size = 3072;
  double mlp_ratio = 4.0;
  int64_t num_heads = 24, depth = 19, depth_single_blocks = 38;
  std::vector<int64_t> axes_dim{16, 56, 56};
  double theta = 10000;
  bool qkv_bias = true, guidance_embed = true;
  bool operator==(const FluxParams&) const = default;
};

// Wan `WanModel.__init__` arguments; defaults = Wan 2.1 T2V-14B.
// model_type follows the Wan 2.1 reference code (and ComfyUI): "i2v" and "flf2v" mean the CLIP
// image branch (img_emb, k_img/v_img) exists; "ti2v" is the Wan 2.2 5B model with per-token
// timesteps. Wan 2.2 I2V-A14B has no CLIP branch, so it is "t2v" with in_dim 36 (as ComfyUI
// classifies it); its variant name, not model_type, says it is an image-to-video expert.
struct WanParams {
  std::string model_type = "t2v";
  std::vector<int64_t> patch_size{1, 2, 2};
  int64_t text_len = 512, in_dim = 16, dim = 5120, ffn_dim = 13824, freq_dim = 256, text_dim = 4096, out_dim = 16,
          num_heads = 40, num_layers = 40;
  bool qk_norm = true, cross_attn_norm = true;
  double eps = 1e-6;
  bool operator==(const WanParams&) const = default;
};

// diffusers/ComfyUI `QwenImageTransformer2DModel` arguments; defaults = Qwen-Image.
// in_channels counts packed 2x2 patches (16*4); out_channels is per pixel (proj_out has
// patch_size^2 * out_channels rows).
struct QwenImageParams {
  int64_t patch_size = 2, in_channels = 64, out_channels = 16, num_layers = 60, attention_head_dim = 128,
          num_attention_heads = 24, joint_attention_dim = 3584;
  std::vector<int64_t> axes_dims_rope{16, 56, 56};
  double theta = 10000;
  bool operator==(const QwenImageParams&) const = default;
};

// Stability `MMDiTX` / ComfyUI `MMDiT` arguments; defaults = SD3.5 Large. The reference code
// fixes hidden_size = 64*depth and num_heads = depth; they are kept explicit so a custom file
// that breaks the rule still gets a correct layout.
struct SD3Params {
  int64_t patch_size = 2, in_channels = 16, out_channels = 16, depth = 38, hidden_size = 2432, num_heads = 38;
  double mlp_ratio = 4.0;
  int64_t pos_embed_max_size = 192, adm_in_channels = 2048, context_in_dim = 4096;
  std::string qk_norm = "rms";  // "rms" (SD3.5) or "" (SD3.0: no ln_q/ln_k)
  std::vector<int64_t> x_block_self_attn_layers{};  // MMDiT-X attn2 layers (SD3.5 Medium: 0..12)
  bool qkv_bias = true;
  bool operator==(const SD3Params&) const = default;
};

using Params = std::variant<FluxParams, WanParams, QwenImageParams, SD3Params>;

struct SamplingDefaults {
  int steps = 28;
  std::string shift = "none";  // "flux-dynamic", "qwen-dynamic", "none", or a positive number as text like "5.0"
  double guidance = 0;         // embedded guidance (flux dev); 0 if none
  double cfg = 1;              // classifier-free guidance scale; 1 = off (two experts: the high-noise one's)
  // A release of two experts (Wan 2.2 A14B): the high-noise expert runs while the model's
  // timestep t >= boundary x 1000, then the low-noise one with `cfg_low`. 0: one expert.
  double boundary = 0;
  double cfg_low = 1;
  std::string sampler;         // the default sampler; "" = the family's (unipc for Wan, euler otherwise)
  bool operator==(const SamplingDefaults&) const = default;
};

struct ModelConfig {
  Family family = Family::Flux;
  std::string variant;  // a release ("flux-dev", "wan2.1-t2v-14b", ...) or "<family>-custom"
  Params params;
  SamplingDefaults sampling;
  // Params that the tensors could not determine and that no sidecar gave: their values are
  // best guesses (names as in params, e.g. "num_heads", "axes_dim"). `inspect` reports them.
  std::vector<std::string> assumed;
  // Expert checkpoints the model runs with: 2 for a model of two experts given as two files
  // (Wan 2.2 A14B's high- and low-noise experts; runtime/exec/expert_pair.h), else 1. Set by
  // whoever opens the files (or plans a two-expert release); not part of the JSON.
  int experts = 1;

  // {"architecture", "variant", "params": {reference-code names}, "sampling": {...}} and,
  // when non-empty, "assumed".
  nlohmann::json to_json() const;
  // Reads the sidecar schema (testdata/reference/*.config.json): "architecture", "params"
  // (missing keys take the release defaults of the family), "sampling" (numbers or numeric
  // strings; unknown sampling keys such as "timestep" are ignored), optional "variant".
  // Fails with a one-line ditrun::Error naming `source` and the field.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);

  int64_t num_blocks() const;  // transformer blocks in execution order (Flux: double + single)
  int64_t attention_heads() const;  // heads of the blocks' self-attention

  bool operator==(const ModelConfig&) const = default;
};

// Typed access; fails (ditrun::Error) if the family does not match.
const FluxParams& flux_params(const ModelConfig& c);
const WanParams& wan_params(const ModelConfig& c);
const QwenImageParams& qwen_image_params(const ModelConfig& c);
const SD3Params& sd3_params(const ModelConfig& c);

// Checks the params are self-consistent (heads divide the width, RoPE axes sum to the head dim,
// known model_type, ...); fails with "<source>: params.<field>: ...".
void validate(const ModelConfig& c, const std::string& source);

}  // namespace ditrun::arch
