// Opening a VAE file: the checkpoint, its weights, and its config, decided as for the DiTs
// (models/pipeline/model_source.h): an explicit sidecar wins over detection from names and
// shapes.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "models/formats/checkpoint.h"
#include "models/quant/weight_set.h"
#include "models/vae/vae_config.h"

namespace ditrun::models::vae {

struct VaeSource {
  std::unique_ptr<formats::Checkpoint> checkpoint;
  std::unique_ptr<quant::WeightSet> weights;
  VaeConfig config;
  std::string config_source;  // "sidecar <path>" or "detected from tensor shapes"
  bool detected = false;      // the config came from the tensor shapes (no sidecar, nothing recorded)
};

// Fails with one line naming the file (not a VAE, unreadable, inconsistent sidecar).
VaeSource open_vae(const std::string& path, const std::optional<std::string>& sidecar_path);

}  // namespace ditrun::models::vae
