#include "models/vae/vae_source.h"

#include "models/pipeline/model_source.h"
#include "models/synth/synthetic_model.h"
#include "models/vae/vae_layout.h"
#include "runtime/core/error.h"

namespace ditrun::models::vae {
namespace {

// The config ditrun recorded when it wrote the file (synthetic VAEs), when it names a VAE.
std::optional<nlohmann::json> embedded_vae_config(const formats::Checkpoint& ck) {
  const auto& meta = ck.safetensors_metadata();
  const auto it = meta.find(synth::kConfigMetadataKey);
  if (it == meta.end()) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("architecture") || !j.at("architecture").is_string() ||
      !vae_kind_from_name(j.at("architecture").get<std::string>()))
    return std::nullopt;
  return j;
}

}  // namespace

VaeSource open_vae(const std::string& path, const std::optional<std::string>& sidecar_path) {
  VaeSource src;
  src.checkpoint = std::make_unique<formats::Checkpoint>(path);
  src.weights = std::make_unique<quant::WeightSet>(*src.checkpoint);
  const std::vector<NamedShape> shapes = named_shapes(*src.weights);
  if (sidecar_path) {
    src.config = VaeConfig::from_json(read_json_file(*sidecar_path), *sidecar_path);
    src.config_source = "sidecar " + *sidecar_path;
  } else if (const auto embedded = embedded_vae_config(*src.checkpoint)) {
    src.config = VaeConfig::from_json(*embedded, path + " (" + synth::kConfigMetadataKey + ")");
    src.config_source = std::string("recorded in the file (") + synth::kConfigMetadataKey + ")";
  } else {
    src.config = detect_vae(shapes, path);
    src.config.validate(path);
    src.config_source = "detected from tensor shapes";
    src.detected = true;
  }
  check_vae_tensors(src.config, shapes, path);
  return src;
}

}  // namespace ditrun::models::vae
