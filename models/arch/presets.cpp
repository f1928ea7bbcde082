// The released models (models.md tables 1.1, 2.1, 3.1, 4) with the sampler settings their
// reference pipelines use, plus two tiny synthetic models for tests. Release params double as
// the knowledge that fills in what tensor shapes cannot tell (head counts, RoPE axes, text length).
#include <algorithm>

#include "models/arch/detect.h"
#include "models/arch/sampling_defaults.h"
#include "runtime/core/error.h"

namespace ditrun::arch {

namespace {

struct Preset {
  std::string_view name;
  Family family;
  Params params;
  SamplingDefaults sampling;
  bool release;  // a published model (detection may name it); tiny ones are not
};

FluxParams flux_schnell_params() {
  FluxParams p;
  p.guidance_embed = false;
  return p;
}

FluxParams flux_tiny_params() {
  FluxParams p;
  p.vec_in_dim = 32;
  p.context_in_dim = 64;
  p.hidden_size = 128;
  p.num_heads = 2;
  p.depth = 2;
  p.depth_single_blocks = 2;
  p.axes_dim = {8, 28, 28};
  return p;
}

WanParams wan(std::string model_type, int64_t in_dim, int64_t dim, int64_t ffn, int64_t heads, int64_t layers,
              int64_t out_dim = 16) {
  WanParams p;
  p.model_type = std::move(model_type);
  p.in_dim = in_dim;
  p.dim = dim;
  p.ffn_dim = ffn;
  p.num_heads = heads;
  p.num_layers = layers;
  p.out_dim = out_dim;
  return p;
}

WanParams wan_tiny_params() {
  WanParams p = wan("t2v", 16, 96, 160, 2, 2);
  p.text_dim = 32;
  p.text_len = 12;
  return p;
}

SD3Params sd35_medium_params() {
  SD3Params p;
  p.depth = 24;
  p.hidden_size = 1536;
  p.num_heads = 24;
  p.pos_embed_max_size = 384;
  for (int64_t i = 0; i <= 12; ++i) p.x_block_self_attn_layers.push_back(i);
  return p;
}

const std::vector<Preset>& presets() {
  // Sampling sources (models.md): Flux 1.6 (diffusers/ComfyUI: dev 28 steps, guidance 3.5, dynamic
  // shift; schnell 4 steps, no shift); Wan 2.7/2.6 (generate.py: t2v 50 steps shift 5, i2v 40
  // steps, flf2v shift 16, guide 5; Wan2.2 A14B 40 steps, T2V shift 12 guide 4.0 for the
  // high-noise expert (3.0 low), I2V shift 5 guide 3.5; 5B 50 steps shift 5 cfg 5); Qwen-Image
  // section 4 (50 steps, true CFG 4, the released scheduler's dynamic shift with terminal
  // stretch; ComfyUI users see a fixed shift instead); SD3.5 3.6 (sd3_infer.py: Large 40
  // steps CFG 4.5, Medium 50 steps CFG 5; ComfyUI shift 3).
  static const std::vector<Preset> table = {
      {"flux-dev", Family::Flux, FluxParams{}, {28, "flux-dynamic", 3.5, 1.0}, true},
      {"flux-schnell", Family::Flux, flux_schnell_params(), {4, "none", 0.0, 1.0}, true},
      {"wan2.1-t2v-1.3b", Family::Wan, wan("t2v", 16, 1536, 8960, 12, 30), {50, "5.0", 0.0, 5.0}, true},
      {"wan2.1-t2v-14b", Family::Wan, wan("t2v", 16, 5120, 13824, 40, 40), {50, "5.0", 0.0, 5.0}, true},
      {"wan2.1-i2v-14b", Family::Wan, wan("i2v", 36, 5120, 13824, 40, 40), {40, "5.0", 0.0, 5.0}, true},
      {"wan2.1-flf2v-14b", Family::Wan, wan("flf2v", 36, 5120, 13824, 40, 40), {50, "16.0", 0.0, 5.0}, true},
      {"wan2.2-ti2v-5b", Family::Wan, wan("ti2v", 48, 3072, 14336, 24, 30, 48), {50, "5.0", 0.0, 5.0}, true},
      // Same shapes as wan2.1-t2v-14b (each expert); detection names the 2.1 model.
      {"wan2.2-t2v-a14b", Family::Wan, wan("t2v", 16, 5120, 13824, 40, 40), {40, "12.0", 0.0, 4.0, 0.875, 3.0}, true},
      // No CLIP branch: model_type t2v with the 36 concatenated image channels (see WanParams).
      {"wan2.2-i2v-a14b", Family::Wan, wan("t2v", 36, 5120, 13824, 40, 40), {40, "5.0", 0.0, 3.5, 0.900, 3.5}, true},
      {"qwen-image", Family::QwenImage, QwenImageParams{}, {50, "qwen-dynamic", 0.0, 4.0}, true},
      {"sd3.5-large", Family::SD3, SD3Params{}, {40, "3.0", 0.0, 4.5}, true},
      {"sd3.5-medium", Family::SD3, sd35_medium_params(), {50, "3.0", 0.0, 5.0}, true},
      {"flux-tiny", Family::Flux, flux_tiny_params(), {28, "flux-dynamic", 3.5, 1.0}, false},
      {"wan-tiny", Family::Wan, wan_tiny_params(), {50, "5.0", 0.0, 5.0}, false},
  };
  return table;
}

const Preset* find_preset(std::string_view name) {
  for (const auto& p : presets())
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.emplace_back(p.name);
  return names;
}

ModelConfig preset(std::string_view name, const std::string& context) {
  const Preset* p = find_preset(name);
  if (p == nullptr) {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    fail("{}: unknown model preset '{}' (known: {})", context, name, known);
  }
  ModelConfig c;
  c.family = p->family;
  c.variant = p->release ? std::string(p->name) : std::string(family_name(p->family)) + "-custom";
  c.params = p->params;
  c.sampling = detail::with_sampler(p->family, p->sampling);
  return c;
}

std::string match_variant(Family family, const Params& params) {
  for (const auto& p : presets())
    if (p.release && p.family == family && p.params == params) return std::string(p.name);
  return std::string(family_name(family)) + "-custom";
}

namespace detail {

SamplingDefaults with_sampler(Family family, SamplingDefaults s) {
  if (s.sampler.empty()) s.sampler = family == Family::Wan ? "unipc" : "euler";
  return s;
}

SamplingDefaults sampling_defaults_for(Family family, const Params& params, std::string_view variant) {
  if (const Preset* p = find_preset(variant); p != nullptr && p->family == family) return with_sampler(family, p->sampling);
  std::string_view like = "flux-dev";
  switch (family) {
    case Family::Flux: {
      const auto* f = std::get_if<FluxParams>(&params);
      like = (f && !f->guidance_embed) ? "flux-schnell" : "flux-dev";
      break;
    }
    case Family::Wan: {
      const auto* w = std::get_if<WanParams>(&params);
      std::string_view t = w ? std::string_view(w->model_type) : "t2v";
      if (t == "i2v") like = "wan2.1-i2v-14b";
      else if (t == "flf2v") like = "wan2.1-flf2v-14b";
      else if (t == "ti2v") like = "wan2.2-ti2v-5b";
      else if (w && w->in_dim != w->out_dim) like = "wan2.2-i2v-a14b";
      else like = "wan2.1-t2v-14b";
      break;
    }
    case Family::QwenImage: like = "qwen-image"; break;
    case Family::SD3: like = "sd3.5-large"; break;
  }
  SamplingDefaults s = find_preset(like)->sampling;
  s.boundary = 0;  // a two-expert release's boundary only where the variant says so
  s.cfg_low = 1;
  return with_sampler(family, s);
}

}  // namespace detail

}  // namespace ditrun::arch
