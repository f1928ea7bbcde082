// Recognising an architecture from a checkpoint's tensor names and shapes, overriding what
// shapes cannot tell with a sidecar, and the named presets (releases and tiny test models).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/arch/model_config.h"
#include "models/formats/tensor_record.h"

namespace ditrun::arch {

struct NamedShape {
  std::string name;
  formats::Shape shape;  // PyTorch order; GGUF files may have leading size-1 dims trimmed
};

// Detects the family from the names (checked against general.architecture when given), infers
// every param the shapes determine, guesses the rest (listed in ModelConfig::assumed), names the
// release whose params all match or "<family>-custom", and takes that release's sampling
// defaults (else the family's usual ones). Fails with "<source>: cannot detect the architecture: ...".
ModelConfig detect_model(const std::vector<NamedShape>& tensors, const std::optional<std::string>& gguf_architecture,
                         const std::string& source);

// Params in the sidecar override those of `base` (and leave ModelConfig::assumed); its sampling
// values override base's. The sidecar's "architecture", when present, must be base's family.
ModelConfig apply_sidecar(ModelConfig base, const nlohmann::json& sidecar, const std::string& source);

// A named config: every release ("flux-dev", ..., "sd3.5-medium") plus "flux-tiny" and "wan-tiny"
// for synthetic models. Unknown name: ditrun::Error "<context>: unknown model preset ...".
ModelConfig preset(std::string_view name, const std::string& context);
std::vector<std::string> preset_names();

// The release whose params equal `params` (first in preset order), or "<family>-custom".
std::string match_variant(Family family, const Params& params);

}  // namespace ditrun::arch

namespace ditrun::arch {

// Fails with "<source>: tensor '<name>' ..." unless the tensors are exactly tensor_layout(config)
// (names; shapes compared without leading size-1 dims, as GGUF may trim them). ComfyUI
// scaled-fp8 side tensors (`scaled_fp8`, `*.scale_weight`, `*.scale_input`) are ignored.
void check_tensors_match(const ModelConfig& config, const std::vector<NamedShape>& tensors, const std::string& source);

}  // namespace ditrun::arch
