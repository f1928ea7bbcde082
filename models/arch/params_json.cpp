// JSON (de)serialisation of params and sampling defaults. Each params struct lists its fields
// once (for_each_field) so writing and reading can never disagree on a key; the keys are the
// reference code's own parameter names, as in testdata/reference/*.config.json.
#include "models/arch/params_json.h"

#include <cmath>

#include "runtime/core/error.h"

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
  return json{{"steps", s.steps}, {"shift", s.shift}, {"guidance", s.guidance}, {"cfg", s.cfg}};
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
      fail("{}: sampling.shift: expected \"flux-dynamic\", \"none\" or a number, got {}", source, it->dump());
    }
  }
  if (auto it = j.find("guidance"); it != j.end()) base.guidance = read_number_or_text(*it, source, "sampling.guidance");
  if (auto it = j.find("cfg"); it != j.end()) base.cfg = read_number_or_text(*it, source, "sampling.cfg");
  return base;
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
