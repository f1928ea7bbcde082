#include "models/pipeline/model_source.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/arch/detect.h"
#include "models/synth/synthetic_model.h"
#include "runtime/core/error.h"

namespace ditrun::models {
nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open config", path);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) fail("{}: not valid JSON", path);
  return j;
}

namespace {

std::optional<std::string> embedded_config(const formats::Checkpoint& ck) {
  if (const auto* gguf = ck.gguf()) {
    if (const auto* v = gguf->find(synth::kConfigMetadataKey)) return v->as_string();
    return std::nullopt;
  }
  const auto& meta = ck.safetensors_metadata();
  if (auto it = meta.find(synth::kConfigMetadataKey); it != meta.end()) return it->second;
  return std::nullopt;
}

}  // namespace

std::vector<arch::NamedShape> named_shapes(const quant::WeightSet& weights) {
  std::vector<arch::NamedShape> shapes;
  for (const auto& w : weights.weights()) shapes.push_back({w.name, w.shape});
  return shapes;
}

ModelSource open_model(const std::string& path, const std::optional<std::string>& sidecar_path) {
  ModelSource src;
  src.checkpoint = std::make_unique<formats::Checkpoint>(path);
  src.weights = std::make_unique<quant::WeightSet>(*src.checkpoint);
  src.config = arch::detect_model(named_shapes(*src.weights), src.checkpoint->gguf_architecture(), path);
  src.config_source = "detected from tensor shapes";
  if (const auto embedded = embedded_config(*src.checkpoint)) {
    const nlohmann::json j = nlohmann::json::parse(*embedded, nullptr, false);
    if (j.is_discarded()) fail("{}: metadata {} is not valid JSON", path, synth::kConfigMetadataKey);
    src.config = arch::apply_sidecar(src.config, j, path + " (" + synth::kConfigMetadataKey + ")");
    src.config_source = std::string("recorded in the file (") + synth::kConfigMetadataKey + ")";
  }
  if (sidecar_path) {
    src.config = arch::apply_sidecar(src.config, read_json_file(*sidecar_path), *sidecar_path);
    src.config_source = "sidecar " + *sidecar_path;
  }
  return src;
}

}  // namespace ditrun::models
