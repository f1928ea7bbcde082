// Internal: the JSON form of params and sampling defaults, shared by ModelConfig::to_json /
// from_json and apply_sidecar so the key names live in one place (params_json.cpp).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/arch/model_config.h"

namespace ditrun::arch::detail {

nlohmann::json params_to_json(const Params& params);
// Overrides `base` (which must hold `family`'s params) with the keys present in `j`, an object.
// Unknown keys and wrong types fail naming `source` and "params.<key>". Appends the keys read
// to `given` when non-null.
Params params_from_json(Family family, const nlohmann::json& j, Params base, const std::string& source,
                        std::vector<std::string>* given);

nlohmann::json sampling_to_json(const SamplingDefaults& s);
// Overrides `base` with "steps", "shift", "guidance", "cfg" when present (numbers or numeric
// strings); other keys (e.g. "timestep") are informational and ignored.
SamplingDefaults sampling_from_json(const nlohmann::json& j, SamplingDefaults base, const std::string& source);

// A sidecar in a reference code's own terms, in ditrun's: architecture "sd3.5-mmditx" (the
// arguments Stability's sd3_impls.BaseModel gives MMDiTX) becomes "sd3", its
// context_embedder_config's in_features `context_in_dim`; arguments ditrun derives or does not
// use (input_size, num_patches, null pos_embed scaling and offset) are dropped, non-null ones
// refused. Other sidecars are returned as they are.
nlohmann::json normalize_sidecar(const nlohmann::json& sidecar, const std::string& source);

// The release-default params of a family (the structs' defaults).
Params default_params(Family family);

}  // namespace ditrun::arch::detail
