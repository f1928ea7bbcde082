#include "models/pipeline/network.h"

#include <spdlog/spdlog.h>

#include "models/flux/flux_model.h"
#include "models/qwen_image/qwen_image_model.h"
#include "models/sd3/sd3_model.h"
#include "models/wan/wan_model.h"
#include "runtime/core/error.h"
#include "runtime/exec/expert_pair.h"
#include "runtime/exec/weight_store.h"

namespace ditrun::models {

std::unique_ptr<runtime::Model> make_network(const arch::ModelConfig& config) {
  if (config.experts != 1 && !(config.experts == 2 && config.family == arch::Family::Wan))
    fail("{}: {} experts: ditrun runs one, or two for Wan (2.2 A14B)", config.variant, config.experts);
  switch (config.family) {
    case arch::Family::Flux: return flux::make_flux_model(arch::flux_params(config));
    case arch::Family::Wan:
      if (config.experts == 2) return runtime::make_expert_pair(wan::make_wan_model(arch::wan_params(config)));
      return wan::make_wan_model(arch::wan_params(config));
    case arch::Family::SD3: return sd3::make_sd3_model(arch::sd3_params(config));
    case arch::Family::QwenImage: return qwen_image::make_qwen_image_model(arch::qwen_image_params(config));
  }
  fail("{}: unknown model family", config.variant);
}

void check_weights_present(const runtime::Model& network, const quant::WeightSet& weights) {
  const std::string& path = weights.checkpoint().path();
  std::string first_missing;
  size_t missing = 0;
  for (const auto& unit : runtime::model_units(network)) for (const std::string& name : unit.weights) {
    const quant::Weight* w = weights.find(name);
    if (!w) {
      if (missing++ == 0) first_missing = name;
      continue;
    }
    if (!w->unsupported.empty()) fail("{}: tensor '{}': {}", path, name, w->unsupported);
  }
  if (missing == 1) fail("{}: the model needs tensor '{}', which the file lacks", path, first_missing);
  if (missing > 1)
    fail("{}: the model needs {} tensors the file lacks, the first '{}' (wrong config or a partial file?)", path,
         missing, first_missing);
}

}  // namespace ditrun::models
