// Opening a model for a command: the checkpoint, its resolved weights, and its config, with
// the config decided in this order: an explicit sidecar (--config), the config ditrun
// recorded when it wrote the file, then detection from tensor names and shapes.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "models/arch/detect.h"
#include "models/arch/model_config.h"
#include "models/formats/checkpoint.h"
#include "models/quant/weight_set.h"

namespace ditrun::models {

struct ModelSource {
  std::unique_ptr<formats::Checkpoint> checkpoint;
  std::unique_ptr<quant::WeightSet> weights;
  arch::ModelConfig config;
  std::string config_source;  // "sidecar <path>", "embedded ditrun.config", "detected"
};

// Every weight's name and shape: what architecture detection reads.
std::vector<arch::NamedShape> named_shapes(const quant::WeightSet& weights);

// Reads a JSON file (a sidecar config, a preset); fails naming the path.
nlohmann::json read_json_file(const std::string& path);

ModelSource open_model(const std::string& path, const std::optional<std::string>& sidecar_path);

}  // namespace ditrun::models
