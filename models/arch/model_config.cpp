// Family names, typed access to the params variant, and the consistency rules every config
// (detected, preset or read from a sidecar) must satisfy before anything is built from it.
#include "models/arch/model_config.h"

#include <numeric>

#include "runtime/core/error.h"

namespace ditrun::arch {

std::string_view family_name(Family f) {
  switch (f) {
    case Family::Flux: return "flux";
    case Family::Wan: return "wan";
    case Family::QwenImage: return "qwen_image";
    case Family::SD3: return "sd3";
  }
  return "?";
}

std::optional<Family> family_from_name(std::string_view name) {
  for (Family f : {Family::Flux, Family::Wan, Family::QwenImage, Family::SD3})
    if (family_name(f) == name) return f;
  return std::nullopt;
}

namespace {
template <class P>
const P& params_as(const ModelConfig& c, Family want) {
  const P* p = std::get_if<P>(&c.params);
  if (c.family != want || p == nullptr)
    fail("model config '{}': expected a {} model, got {}", c.variant, family_name(want), family_name(c.family));
  return *p;
}
}  // namespace

const FluxParams& flux_params(const ModelConfig& c) { return params_as<FluxParams>(c, Family::Flux); }
const WanParams& wan_params(const ModelConfig& c) { return params_as<WanParams>(c, Family::Wan); }
const QwenImageParams& qwen_image_params(const ModelConfig& c) {
  return params_as<QwenImageParams>(c, Family::QwenImage);
}
const SD3Params& sd3_params(const ModelConfig& c) { return params_as<SD3Params>(c, Family::SD3); }

int64_t ModelConfig::num_blocks() const {
  switch (family) {
    case Family::Flux: {
      const auto& p = flux_params(*this);
      return p.depth + p.depth_single_blocks;
    }
    case Family::Wan: return wan_params(*this).num_layers;
    case Family::QwenImage: return qwen_image_params(*this).num_layers;
    case Family::SD3: return sd3_params(*this).depth;
  }
  return 0;
}

int64_t ModelConfig::attention_heads() const {
  switch (family) {
    case Family::Flux: return flux_params(*this).num_heads;
    case Family::Wan: return wan_params(*this).num_heads;
    case Family::QwenImage: return qwen_image_params(*this).num_attention_heads;
    case Family::SD3: return sd3_params(*this).num_heads;
  }
  return 0;
}

namespace {

void positive(const std::string& source, std::string_view field, int64_t v) {
  if (v <= 0) fail("{}: params.{}: must be positive, got {}", source, field, v);
}

// RoPE rotates adjacent pairs inside axis groups, so each group must be even and the groups
// must tile the head dim exactly.
void rope_axes(const std::string& source, std::string_view field, const std::vector<int64_t>& axes, int64_t head_dim) {
  if (axes.empty()) fail("{}: params.{}: must list at least one axis", source, field);
  for (int64_t a : axes)
    if (a <= 0 || a % 2 != 0) fail("{}: params.{}: every axis width must be positive and even, got {}", source, field, a);
  int64_t sum = std::accumulate(axes.begin(), axes.end(), int64_t{0});
  if (sum != head_dim)
    fail("{}: params.{}: axis widths sum to {}, but the head dim is {}", source, field, sum, head_dim);
}

void heads_divide(const std::string& source, std::string_view heads_field, int64_t heads, std::string_view width_field,
                  int64_t width) {
  positive(source, heads_field, heads);
  if (width % heads != 0)
    fail("{}: params.{}: {} heads do not divide {} {}", source, heads_field, heads, width_field, width);
}

void validate_flux(const FluxParams& p, const std::string& s) {
  for (auto [f, v] : {std::pair<std::string_view, int64_t>{"in_channels", p.in_channels}, {"out_channels", p.out_channels},
                      {"vec_in_dim", p.vec_in_dim}, {"context_in_dim", p.context_in_dim},
                      {"hidden_size", p.hidden_size}})
    positive(s, f, v);
  // Either block kind may be absent in a custom model, but not both.
  if (p.depth < 0) fail("{}: params.depth: must not be negative, got {}", s, p.depth);
  if (p.depth_single_blocks < 0)
    fail("{}: params.depth_single_blocks: must not be negative, got {}", s, p.depth_single_blocks);
  if (p.depth + p.depth_single_blocks == 0) fail("{}: params.depth: the model needs at least one block", s);
  if (!(p.mlp_ratio > 0) || static_cast<double>(static_cast<int64_t>(p.hidden_size * p.mlp_ratio)) != p.hidden_size * p.mlp_ratio)
    fail("{}: params.mlp_ratio: {} does not give a whole MLP width for hidden_size {}", s, p.mlp_ratio, p.hidden_size);
  heads_divide(s, "num_heads", p.num_heads, "hidden_size", p.hidden_size);
  rope_axes(s, "axes_dim", p.axes_dim, p.hidden_size / p.num_heads);
  if (!(p.theta > 0)) fail("{}: params.theta: must be positive, got {}", s, p.theta);
}

void validate_wan(const WanParams& p, const std::string& s) {
  if (p.model_type != "t2v" && p.model_type != "i2v" && p.model_type != "flf2v" && p.model_type != "ti2v")
    fail("{}: params.model_type: '{}' is not one of t2v, i2v, flf2v, ti2v", s, p.model_type);
  if (p.patch_size.size() != 3) fail("{}: params.patch_size: needs 3 values (t, h, w), got {}", s, p.patch_size.size());
  for (int64_t v : p.patch_size) positive(s, "patch_size", v);
  for (auto [f, v] : {std::pair<std::string_view, int64_t>{"text_len", p.text_len}, {"in_dim", p.in_dim}, {"dim", p.dim},
                      {"ffn_dim", p.ffn_dim}, {"freq_dim", p.freq_dim}, {"text_dim", p.text_dim},
                      {"out_dim", p.out_dim}, {"num_layers", p.num_layers}})
    positive(s, f, v);
  if (p.freq_dim % 2 != 0) fail("{}: params.freq_dim: must be even, got {}", s, p.freq_dim);
  heads_divide(s, "num_heads", p.num_heads, "dim", p.dim);
  // Wan splits the head dim into (frame, row, col) widths D-4*floor(D/6), 2*floor(D/6), 2*floor(D/6).
  if ((p.dim / p.num_heads) % 2 != 0)
    fail("{}: params.num_heads: head dim {} (dim {} / {} heads) must be even for RoPE", s, p.dim / p.num_heads, p.dim,
         p.num_heads);
  if (!(p.eps > 0)) fail("{}: params.eps: must be positive, got {}", s, p.eps);
}

void validate_qwen(const QwenImageParams& p, const std::string& s) {
  for (auto [f, v] : {std::pair<std::string_view, int64_t>{"patch_size", p.patch_size}, {"in_channels", p.in_channels},
                      {"out_channels", p.out_channels}, {"num_layers", p.num_layers},
                      {"attention_head_dim", p.attention_head_dim}, {"num_attention_heads", p.num_attention_heads},
                      {"joint_attention_dim", p.joint_attention_dim}})
    positive(s, f, v);
  rope_axes(s, "axes_dims_rope", p.axes_dims_rope, p.attention_head_dim);
  if (!(p.theta > 0)) fail("{}: params.theta: must be positive, got {}", s, p.theta);
}

void validate_sd3(const SD3Params& p, const std::string& s) {
  for (auto [f, v] : {std::pair<std::string_view, int64_t>{"patch_size", p.patch_size}, {"in_channels", p.in_channels},
                      {"out_channels", p.out_channels}, {"depth", p.depth}, {"hidden_size", p.hidden_size},
                      {"pos_embed_max_size", p.pos_embed_max_size}, {"adm_in_channels", p.adm_in_channels},
                      {"context_in_dim", p.context_in_dim}})
    positive(s, f, v);
  heads_divide(s, "num_heads", p.num_heads, "hidden_size", p.hidden_size);
  if (!(p.mlp_ratio > 0) || static_cast<double>(static_cast<int64_t>(p.hidden_size * p.mlp_ratio)) != p.hidden_size * p.mlp_ratio)
    fail("{}: params.mlp_ratio: {} does not give a whole MLP width for hidden_size {}", s, p.mlp_ratio, p.hidden_size);
  if (!p.qk_norm.empty() && p.qk_norm != "rms")
    fail("{}: params.qk_norm: '{}' is not supported (only \"rms\" or null)", s, p.qk_norm);
  int64_t prev = -1;
  for (int64_t l : p.x_block_self_attn_layers) {
    if (l <= prev || l >= p.depth)
      fail("{}: params.x_block_self_attn_layers: must be increasing block indices below depth {}, got {}", s, p.depth, l);
    prev = l;
  }
}

}  // namespace

void validate(const ModelConfig& c, const std::string& source) {
  switch (c.family) {
    case Family::Flux: validate_flux(flux_params(c), source); break;
    case Family::Wan: validate_wan(wan_params(c), source); break;
    case Family::QwenImage: validate_qwen(qwen_image_params(c), source); break;
    case Family::SD3: validate_sd3(sd3_params(c), source); break;
  }
  const auto& sm = c.sampling;
  if (sm.steps <= 0) fail("{}: sampling.steps: must be positive, got {}", source, sm.steps);
  if (sm.guidance < 0) fail("{}: sampling.guidance: must not be negative, got {}", source, sm.guidance);
  if (!(sm.cfg > 0)) fail("{}: sampling.cfg: must be positive, got {}", source, sm.cfg);
  if (sm.shift != "flux-dynamic" && sm.shift != "qwen-dynamic" && sm.shift != "none") {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(sm.shift, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != sm.shift.size() || !(v > 0))
      fail("{}: sampling.shift: '{}' is not \"flux-dynamic\", \"qwen-dynamic\", \"none\" or a positive number", source, sm.shift);
  }
}

}  // namespace ditrun::arch
