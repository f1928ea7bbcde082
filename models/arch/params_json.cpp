// JSON (de)serialisation of params and sampling defaults. Each params struct lists its fields
// once (for_each_field) so writing and reading can never disagree on a key; the keys are the
// reference code's own parameter names, as in testdata/reference/*.config.json.
#include "models/arch/params_json.h"

#include <cmath>
#include <optional>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "runtime/core/error.h"
#include "runtime/sampling/sampler.h"

namespace ditrun::arch::detail {

namespace {

using nlohmann::json;

template <class P, class F>
void for_each_field(P& p, F&& f) {
  using T = std::remove_const_t<P>;
  if constexpr (std::is_same_v<T, FluxParams>) {
    f("in_channels", p.in_channels);
    f("out_channels", p.out_channels);
    f("vec_in_dim", p.vec_in_dim);
    f("context_in_dim", p.context_in_dim);
    f("hidden_size", p.hidden_size);
    f("mlp_ratio", p.mlp_ratio);
    f("num_heads", p.num_heads);
    f("depth", p.depth);
    f("depth_single_blocks", p.depth_single_blocks);
    f("axes_dim", p.axes_dim);
    f("theta", p.theta);
    f("qkv_bias", p.qkv_bias);
    f("guidance_embed", p.guidance_embed);
  } else if constexpr (std::is_same_v<T, WanParams>) {
    f("model_type", p.model_type);
    f("patch_size", p.patch_size);
    f("text_len", p.text_len);
    f("in_dim", p.in_dim);
    f("dim", p.dim);
    f("ffn_dim", p.ffn_dim);
    f("freq_dim", p.freq_dim);
    f("text_dim", p.text_dim);
    f("out_dim", p.out_dim);
    f("num_heads", p.num_heads);
    f("num_layers", p.num_layers);
    f("qk_norm", p.qk_norm);
    f("cross_attn_norm", p.cross_attn_norm);
    f("eps", p.eps);
  } else if constexpr (std::is_same_v<T, QwenImageParams>) {
    f("patch_size", p.patch_size);
    f("in_channels", p.in_channels);
    f("out_channels", p.out_channels);
    f("num_layers", p.num_layers);
    f("attention_head_dim", p.attention_head_dim);
    f("num_attention_heads", p.num_attention_heads);
    f("joint_attention_dim", p.joint_attention_dim);
    f("axes_dims_rope", p.axes_dims_rope);
    f("theta", p.theta);
  } else {
    static_assert(std::is_same_v<T, SD3Params>);
    f("patch_size", p.patch_size);
    f("in_channels", p.in_channels);
    f("out_channels", p.out_channels);
    f("depth", p.depth);
    f("hidden_size", p.hidden_size);
    f("num_heads", p.num_heads);
    f("mlp_ratio", p.mlp_ratio);
    f("pos_embed_max_size", p.pos_embed_max_size);
    f("adm_in_channels", p.adm_in_channels);
    f("context_in_dim", p.context_in_dim);
    f("qk_norm", p.qk_norm);
    f("x_block_self_attn_layers", p.x_block_self_attn_layers);
    f("qkv_bias", p.qkv_bias);
  }
}

json value_to_json(const std::string& v) { return v.empty() ? json(nullptr) : json(v); }  // SD3 qk_norm None
template <class V>
json value_to_json(const V& v) {
  return json(v);
}

int64_t read_int(const json& v, const std::string& source, const std::string& field) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  fail("{}: {}: expected an integer, got {}", source, field, v.dump());
}

void read_value(const json& v, int64_t& out, const std::string& s, const std::string& f) { out = read_int(v, s, f); }
void read_value(const json& v, double& out, const std::string& s, const std::string& f) {
  if (!v.is_number()) fail("{}: {}: expected a number, got {}", s, f, v.dump());
  out = v.get<double>();
}
void read_value(const json& v, bool& out, const std::string& s, const std::string& f) {
  if (!v.is_boolean()) fail("{}: {}: expected true or false, got {}", s, f, v.dump());
  out = v.get<bool>();
}
void read_value(const json& v, std::string& out, const std::string& s, const std::string& f) {
  if (v.is_null()) {
    out.clear();
    return;
  }
  if (!v.is_string()) fail("{}: {}: expected a string, got {}", s, f, v.dump());
  out = v.get<std::string>();
}
void read_value(const json& v, std::vector<int64_t>& out, const std::string& s, const std::string& f) {
  if (!v.is_array()) fail("{}: {}: expected an array of integers, got {}", s, f, v.dump());
  out.clear();
  for (const auto& e : v) out.push_back(read_int(e, s, f));
}

// Sampling values come as numbers or as numeric strings ("3", "3.5") in the sidecars.
double read_number_or_text(const json& v, const std::string& source, const std::string& field) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string t = v.get<std::string>();
    size_t used = 0;
    double d = 0;
    try {
      d = std::stod(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != 0 && used == t.size() && std::isfinite(d)) return d;
  }
  fail("{}: {}: expected a number, got {}", source, field, v.dump());
}

}  // namespace

json params_to_json(const Params& params) {
  json j = json::object();
  std::visit([&](const auto& p) { for_each_field(p, [&](const char* key, const auto& v) { j[key] = value_to_json(v); }); },
             params);
  return j;
}

Params params_from_json(Family family, const json& j, Params base, const std::string& source,
                        std::vector<std::string>* given) {
  if (!j.is_object()) fail("{}: params: expected an object, got {}", source, j.dump());
  if (base.index() != default_params(family).index()) base = default_params(family);
  std::visit(
      [&](auto& p) {
        std::vector<std::string> known;
        for_each_field(p, [&](const char* key, auto& v) {
          known.emplace_back(key);
          auto it = j.find(key);
          if (it == j.end()) return;
          read_value(*it, v, source, std::string("params.") + key);
          if (given) given->emplace_back(key);
        });
        for (const auto& [key, value] : j.items()) {
          if (std::find(known.begin(), known.end(), key) == known.end())
            fail("{}: params.{}: not a {} parameter", source, key, family_name(family));
        }
      },
      base);
  return base;
}

json sampling_to_json(const SamplingDefaults& s) {
  json j{{"steps", s.steps}, {"shift", s.shift}, {"guidance", s.guidance}, {"cfg", s.cfg}};
  if (s.boundary > 0) {
    j["boundary"] = s.boundary;
    j["guide_scale"] = json::array({s.cfg_low, s.cfg});  // [low-noise, high-noise], as Wan's configs
  }
  if (!s.sampler.empty()) j["sampler"] = s.sampler;
  return j;
}

SamplingDefaults sampling_from_json(const json& j, SamplingDefaults base, const std::string& source) {
  if (!j.is_object()) fail("{}: sampling: expected an object, got {}", source, j.dump());
  if (auto it = j.find("steps"); it != j.end()) {
    double d = read_number_or_text(*it, source, "sampling.steps");
    if (d != std::floor(d) || d < 1 || d > 1e6) fail("{}: sampling.steps: expected a positive whole number, got {}", source, it->dump());
    base.steps = static_cast<int>(d);
  }
  if (auto it = j.find("shift"); it != j.end()) {
    if (it->is_number()) {
      base.shift = fmt::format("{}", it->get<double>());
    } else if (it->is_string()) {
      base.shift = it->get<std::string>();
    } else {
      fail("{}: sampling.shift: expected \"flux-dynamic\", \"qwen-dynamic\", \"none\" or a number, got {}", source, it->dump());
    }
  }
  if (auto it = j.find("guidance"); it != j.end()) base.guidance = read_number_or_text(*it, source, "sampling.guidance");
  if (auto it = j.find("cfg"); it != j.end()) base.cfg = read_number_or_text(*it, source, "sampling.cfg");
  // Wan's own config names (wan/configs/*.py), as the reference sidecars carry them.
  if (auto it = j.find("guide_scale"); it != j.end()) {
    if (it->is_array()) {
      if (it->size() != 2)
        fail("{}: sampling.guide_scale: expected a number or [low_noise, high_noise], got {}", source, it->dump());
      base.cfg_low = read_number_or_text((*it)[0], source, "sampling.guide_scale[0]");
      base.cfg = read_number_or_text((*it)[1], source, "sampling.guide_scale[1]");
    } else {
      base.cfg = base.cfg_low = read_number_or_text(*it, source, "sampling.guide_scale");
    }
  }
  if (auto it = j.find("guide_scale_order"); it != j.end()) {
    const std::string order = it->is_string() ? it->get<std::string>() : it->dump();
    const size_t low = order.find("low"), high = order.find("high");
    if (low == std::string::npos || high == std::string::npos || high < low)
      fail("{}: sampling.guide_scale_order: ditrun reads guide_scale as [low_noise, high_noise] (Wan's order), "
           "the file says {}", source, it->dump());
  }
  for (const char* key : {"sampler", "sample_solver"})
    if (auto it = j.find(key); it != j.end()) {
      if (!it->is_string() || it->get<std::string>().empty())
        fail("{}: sampling.{}: expected a sampler name, got {}", source, key, it->dump());
      // A reference config may describe its sampler in words ("sd3_impls.sample_euler with
      // CFGDenoiser"): only a name ditrun runs becomes the default.
      if (!runtime::sampler_from_name(it->get<std::string>()))
        spdlog::warn("{}: sampling.{}: '{}' is not a sampler ditrun runs ({}); the model's default stays", source, key,
                     it->get<std::string>(), runtime::kSamplerNames);
      else
        base.sampler = it->get<std::string>();
    }
  if (auto it = j.find("num_train_timesteps"); it != j.end() && read_number_or_text(*it, source, "sampling.num_train_timesteps") != 1000)
    fail("{}: sampling.num_train_timesteps: {} (ditrun's models are trained on 1000 timesteps)", source, it->dump());
  std::optional<double> boundary;
  if (auto it = j.find("boundary"); it != j.end()) boundary = read_number_or_text(*it, source, "sampling.boundary");
  if (auto it = j.find("boundary_timestep"); it != j.end()) {
    const double t = read_number_or_text(*it, source, "sampling.boundary_timestep");
    if (boundary && std::abs(*boundary * 1000 - t) > 1e-6)
      fail("{}: sampling.boundary_timestep: {} is not boundary x 1000 ({})", source, it->dump(), *boundary * 1000);
    boundary = t / 1000;
  }
  if (boundary) {
    if (!(*boundary > 0 && *boundary < 1))
      fail("{}: sampling.boundary: {} is outside (0, 1) (a fraction of the 1000 training timesteps)", source, *boundary);
    base.boundary = *boundary;
  }
  // Keys ditrun does not use are named, not dropped silently.
  static const std::vector<std::string> used = {"steps", "shift", "guidance", "cfg", "guide_scale", "guide_scale_order",
                                                "sampler", "sample_solver", "num_train_timesteps", "boundary",
                                                "boundary_timestep"};
  std::vector<std::string> unused;
  for (const auto& [key, value] : j.items())
    if (std::find(used.begin(), used.end(), key) == used.end()) unused.push_back(key);
  if (!unused.empty())
    spdlog::warn("{}: sampling: ditrun does not use {} (ignored)", source, fmt::format("{}", fmt::join(unused, ", ")));
  return base;
}

namespace {

// The diffusers `QwenImageTransformer2DModel` arguments of later models of the family (the
// edit models' zero_cond_t, the layered RoPE): accepted when off, refused when on.
json normalize_qwen_image_sidecar(const json& sidecar, const std::string& source) {
  json out = sidecar;
  out["architecture"] = family_name(Family::QwenImage);
  if (auto p = out.find("params"); p != out.end() && p->is_object()) {
    for (const char* flag : {"guidance_embeds", "zero_cond_t", "use_additional_t_cond", "use_layer3d_rope"}) {
      const auto it = p->find(flag);
      if (it == p->end()) continue;
      if (!it->is_boolean()) fail("{}: params.{}: expected true or false, got {}", source, flag, it->dump());
      if (it->get<bool>()) fail("{}: params.{}: true is not supported (ditrun runs Qwen-Image as released)", source, flag);
      p->erase(it);
    }
  }
  if (auto s = out.find("sampling"); s != out.end() && s->is_object()) {
    json& sampling = *s;
    if (auto cfg = sampling.find("true_cfg_scale"); cfg != sampling.end()) {
      sampling["cfg"] = *cfg;
      sampling.erase(cfg);
    }
    // The released scheduler config is Qwen-Image's dynamic shift; another one is not run.
    if (auto sc = sampling.find("scheduler_config"); sc != sampling.end()) {
      const json released = {{"use_dynamic_shifting", true}, {"base_shift", 0.5},         {"max_shift", 0.9},
                             {"base_image_seq_len", 256},     {"max_image_seq_len", 8192}, {"shift_terminal", 0.02},
                             {"time_shift_type", "exponential"}};
      for (const auto& [key, want] : released.items()) {
        const auto it = sc->find(key);
        if (it == sc->end() || *it != want)
          fail("{}: sampling.scheduler_config.{}: {} (ditrun runs the released Qwen-Image schedule, {} = {})", source,
               key, it == sc->end() ? "missing" : it->dump(), key, want.dump());
      }
      sampling["shift"] = "qwen-dynamic";
      sampling.erase(sc);
    }
    // What the reference config records of its run besides the settings: derived or descriptive.
    for (const char* derived : {"pipeline", "image_seq_len", "mu", "scheduler", "timestep"}) sampling.erase(derived);
  }
  return out;
}

}  // namespace

nlohmann::json normalize_sidecar(const nlohmann::json& sidecar, const std::string& source) {
  const auto arch = sidecar.is_object() ? sidecar.find("architecture") : sidecar.end();
  if (arch != sidecar.end() && *arch == "qwen-image") return normalize_qwen_image_sidecar(sidecar, source);
  if (arch == sidecar.end() || *arch != "sd3.5-mmditx") return sidecar;
  json out = sidecar;
  out["architecture"] = family_name(Family::SD3);
  if (auto p = out.find("params"); p != out.end() && p->is_object()) {
    json& params = *p;
    if (auto ctx = params.find("context_embedder_config"); ctx != params.end()) {
      const json* in = ctx->contains("params") ? &ctx->at("params") : nullptr;
      if (!in || !in->contains("in_features") || !in->at("in_features").is_number_integer())
        fail("{}: params.context_embedder_config: expected params.in_features, got {}", source, ctx->dump());
      params["context_in_dim"] = in->at("in_features");
      params.erase("context_embedder_config");
    }
    for (const char* derived : {"input_size", "num_patches", "pos_embed_scaling_factor", "pos_embed_offset"}) {
      const auto it = params.find(derived);
      if (it == params.end()) continue;
      if (!it->is_null() && std::string_view(derived).starts_with("pos_embed_"))
        fail("{}: params.{}: {} (ditrun reads pos_embed from the file as it is; no scaling or offset)", source,
             derived, it->dump());
      params.erase(it);
    }
  }
  return out;
}

Params default_params(Family family) {
  switch (family) {
    case Family::Flux: return FluxParams{};
    case Family::Wan: return WanParams{};
    case Family::QwenImage: return QwenImageParams{};
    case Family::SD3: return SD3Params{};
  }
  return FluxParams{};
}

}  // namespace ditrun::arch::detail
