// Which family a checkpoint is (from its tensor names, cross-checked with GGUF's
// general.architecture), the per-family params, the release it matches, and sidecar overrides.
#include "models/arch/detect.h"

#include <algorithm>

#include "models/arch/params_json.h"
#include "models/arch/sampling_defaults.h"
#include "models/arch/shape_index.h"
#include "runtime/core/error.h"

namespace ditrun::arch {

namespace {

// Tensor names only one family has (original naming; ComfyUI's prefix is already stripped).
bool names_look_like(Family f, const std::vector<NamedShape>& tensors) {
  auto any = [&](auto pred) { return std::any_of(tensors.begin(), tensors.end(), [&](const auto& t) { return pred(t.name); }); };
  switch (f) {
    case Family::Flux:
      return any([](const std::string& n) { return n.starts_with("double_blocks.") || n.starts_with("single_blocks."); });
    case Family::Wan:
      return any([](const std::string& n) { return n == "head.modulation" || n == "patch_embedding.weight"; }) &&
             any([](const std::string& n) { return detail::block_index(n, "blocks.").has_value(); });
    case Family::QwenImage:
      return any([](const std::string& n) { return n == "txt_norm.weight"; }) &&
             any([](const std::string& n) { return detail::block_index(n, "transformer_blocks.").has_value(); });
    case Family::SD3:
      return any([](const std::string& n) { return n.starts_with("joint_blocks.") || n == "x_embedder.proj.weight"; });
  }
  return false;
}

std::string sample_names(const std::vector<NamedShape>& tensors) {
  std::string s;
  for (size_t i = 0; i < tensors.size() && i < 3; ++i) s += (i ? ", '" : "'") + tensors[i].name + "'";
  return s;
}

Family detect_family(const std::vector<NamedShape>& tensors, const std::optional<std::string>& gguf_arch,
                     const std::string& source) {
  std::vector<Family> hits;
  for (Family f : {Family::Flux, Family::Wan, Family::QwenImage, Family::SD3})
    if (names_look_like(f, tensors)) hits.push_back(f);

  if (gguf_arch) {
    auto declared = family_from_name(*gguf_arch);
    if (!declared)
      fail("{}: cannot detect the architecture: GGUF general.architecture '{}' is not supported (flux, wan, qwen_image, sd3)",
           source, *gguf_arch);
    if (std::find(hits.begin(), hits.end(), *declared) == hits.end())
      fail("{}: cannot detect the architecture: GGUF general.architecture says '{}' but the tensor names are not {}'s ({})",
           source, *gguf_arch, *gguf_arch, tensors.empty() ? std::string("no tensors") : sample_names(tensors));
    return *declared;
  }
  if (hits.size() == 1) return hits[0];
  if (hits.size() > 1)
    fail("{}: cannot detect the architecture: the tensor names fit both {} and {}", source, family_name(hits[0]),
         family_name(hits[1]));
  if (tensors.empty()) fail("{}: cannot detect the architecture: the checkpoint has no diffusion-model tensors", source);
  const bool diffusers = std::any_of(tensors.begin(), tensors.end(), [](const auto& t) {
    return t.name.starts_with("single_transformer_blocks.") || t.name.starts_with("condition_embedder.") ||
           t.name.starts_with("time_text_embed.text_embedder.");
  });
  if (diffusers)
    fail("{}: cannot detect the architecture: this is a diffusers-format Flux/Wan/SD3 file; convert it to the original "
         "(ComfyUI) naming first",
         source);
  fail("{}: cannot detect the architecture: no Flux (double_blocks.N), Wan (blocks.N + head.modulation), Qwen-Image "
       "(transformer_blocks.N + txt_norm) or SD3 (joint_blocks.N) tensors among {} tensors (first {})",
       source, tensors.size(), sample_names(tensors));
}

// A release's non-derivable params are known, so nothing is assumed once a release matches.
void settle_variant(ModelConfig& c) {
  c.variant = match_variant(c.family, c.params);
  if (!c.variant.ends_with("-custom")) c.assumed.clear();
}

}  // namespace

ModelConfig detect_model(const std::vector<NamedShape>& tensors, const std::optional<std::string>& gguf_architecture,
                         const std::string& source) {
  ModelConfig c;
  c.family = detect_family(tensors, gguf_architecture, source);
  detail::ShapeIndex index(tensors, source, std::string(family_name(c.family)) + " model:");
  switch (c.family) {
    case Family::Flux: c.params = detail::detect_flux(index, c.assumed); break;
    case Family::Wan: c.params = detail::detect_wan(index, c.assumed); break;
    case Family::QwenImage: c.params = detail::detect_qwen_image(index, c.assumed); break;
    case Family::SD3: c.params = detail::detect_sd3(index, c.assumed); break;
  }
  settle_variant(c);
  c.sampling = detail::sampling_defaults_for(c.family, c.params, c.variant);
  try {
    validate(c, source);
  } catch (const Error& e) {
    fail("{} (detected from the tensor shapes)", e.what());
  }
  return c;
}

ModelConfig apply_sidecar(ModelConfig base, const nlohmann::json& given, const std::string& source) {
  if (!given.is_object()) fail("{}: sidecar: expected a JSON object, got {}", source, given.type_name());
  const nlohmann::json sidecar = detail::normalize_sidecar(given, source);
  if (auto a = sidecar.find("architecture"); a != sidecar.end()) {
    if (!a->is_string()) fail("{}: architecture: expected a string, got {}", source, a->dump());
    if (a->get<std::string>() != family_name(base.family))
      fail("{}: architecture: the sidecar says '{}' but the checkpoint is a {} model", source, a->get<std::string>(),
           family_name(base.family));
  }
  if (auto p = sidecar.find("params"); p != sidecar.end()) {
    std::vector<std::string> given;
    base.params = detail::params_from_json(base.family, *p, base.params, source, &given);
    std::erase_if(base.assumed, [&](const std::string& a) { return std::find(given.begin(), given.end(), a) != given.end(); });
  }
  const std::string before = base.variant;
  if (auto v = sidecar.find("variant"); v != sidecar.end()) {
    if (!v->is_string() || v->get<std::string>().empty())
      fail("{}: variant: expected a non-empty string, got {}", source, v->dump());
    base.variant = v->get<std::string>();
  } else {
    settle_variant(base);
  }
  if (base.variant != before) base.sampling = detail::sampling_defaults_for(base.family, base.params, base.variant);
  if (auto s = sidecar.find("sampling"); s != sidecar.end())
    base.sampling = detail::sampling_from_json(*s, base.sampling, source);
  validate(base, source);
  return base;
}

}  // namespace ditrun::arch
