// ModelConfig <-> JSON: the sidecar schema of testdata/reference/*.config.json, which is also
// what `inspect` prints and what plans record.
#include "models/arch/detect.h"
#include "models/arch/model_config.h"
#include "models/arch/params_json.h"
#include "models/arch/sampling_defaults.h"
#include "runtime/core/error.h"

namespace ditrun::arch {

using nlohmann::json;

json ModelConfig::to_json() const {
  json j{{"architecture", family_name(family)},
         {"variant", variant},
         {"params", detail::params_to_json(params)},
         {"sampling", detail::sampling_to_json(sampling)}};
  if (!assumed.empty()) j["assumed"] = assumed;
  return j;
}

ModelConfig ModelConfig::from_json(const json& given, const std::string& source) {
  if (!given.is_object()) fail("{}: model config: expected a JSON object, got {}", source, given.type_name());
  const json j = detail::normalize_sidecar(given, source);
  auto arch = j.find("architecture");
  if (arch == j.end()) fail("{}: model config: missing \"architecture\" (flux, wan, qwen_image or sd3)", source);
  if (!arch->is_string()) fail("{}: architecture: expected a string, got {}", source, arch->dump());
  auto family = family_from_name(arch->get<std::string>());
  if (!family)
    fail("{}: architecture: '{}' is not supported (flux, wan, qwen_image, sd3)", source, arch->get<std::string>());

  ModelConfig c;
  c.family = *family;
  c.params = detail::default_params(*family);
  if (auto p = j.find("params"); p != j.end()) c.params = detail::params_from_json(*family, *p, c.params, source, nullptr);

  if (auto v = j.find("variant"); v != j.end()) {
    if (!v->is_string() || v->get<std::string>().empty())
      fail("{}: variant: expected a non-empty string, got {}", source, v->dump());
    c.variant = v->get<std::string>();
  } else {
    c.variant = match_variant(c.family, c.params);
  }

  c.sampling = detail::sampling_defaults_for(c.family, c.params, c.variant);
  if (auto s = j.find("sampling"); s != j.end()) c.sampling = detail::sampling_from_json(*s, c.sampling, source);

  if (auto a = j.find("assumed"); a != j.end()) {
    if (!a->is_array()) fail("{}: assumed: expected an array of parameter names, got {}", source, a->dump());
    for (const auto& e : *a) {
      if (!e.is_string()) fail("{}: assumed: expected parameter names, got {}", source, e.dump());
      c.assumed.push_back(e.get<std::string>());
    }
  }
  validate(c, source);
  return c;
}

}  // namespace ditrun::arch
