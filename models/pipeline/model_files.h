// A model as `run`, `serve` and `plan` open it: one checkpoint, or a model of two experts
// (Wan 2.2 A14B), given as the high-noise checkpoint and the low-noise one (--low-noise, or
// the `experts` section of a sidecar config, as Wan's reference configs name them), with the
// network the runtime runs and where its weights are read from.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "models/pipeline/model_cost.h"
#include "models/pipeline/model_source.h"
#include "runtime/exec/model.h"
#include "runtime/exec/weight_store.h"

namespace ditrun::models {

struct ModelFiles {
  std::string path;                      // the checkpoint (of two experts: the high-noise one)
  std::optional<std::string> low_noise;  // the low-noise expert (wins over the sidecar's)
  std::optional<std::string> config;     // a sidecar config
};

struct OpenedModel {
  ModelSource source;                    // the checkpoint; source.config.experts says 1 or 2
  std::optional<ModelSource> low_noise;  // the low-noise expert of two
  std::unique_ptr<runtime::Model> network;

  const arch::ModelConfig& config() const { return source.config; }
  // The weights by the network's names (an expert pair's prefixed ones), valid while this lives.
  runtime::WeightStore::FindSource find_weight() const;
  FindStoredWeight stored_weights() const;
  std::string describe() const;  // "FILE (variant)" or "HIGH + LOW (variant, two experts)"
};

// Opens the files (mapped, nothing read yet) and checks them: every weight present, and two
// experts of one architecture (a one-line error naming both files and the first parameter
// that differs otherwise). A two-expert model without a boundary in its config gets its
// release's (0.875 text-to-video, 0.900 image-to-video).
OpenedModel open_model_files(const ModelFiles& files);

// The low-noise expert a sidecar's `experts` section names (relative to the sidecar), if any;
// fails when it names `model_path` itself as the low-noise expert. Other keys are warned of.
std::optional<std::string> sidecar_low_noise(const nlohmann::json& sidecar, const std::string& sidecar_path,
                                             const std::string& model_path);

// The stored weights of a pair network (runtime/exec/expert_pair.h) from each expert's.
FindStoredWeight expert_pair_weights(FindStoredWeight high, FindStoredWeight low);

}  // namespace ditrun::models
