// Internal: which sampler settings a config gets when nothing says otherwise.
#pragma once

#include <string_view>

#include "models/arch/model_config.h"

namespace ditrun::arch::detail {

// The release preset's defaults when `variant` names one; else the family's usual ones
// (Flux: dev or schnell by guidance_embed; Wan: by model_type; Qwen-Image; SD3.5 Large).
// `s` with the family's sampler (Wan: unipc, as its official code; others: euler) unless it names one.
SamplingDefaults with_sampler(Family family, SamplingDefaults s);

SamplingDefaults sampling_defaults_for(Family family, const Params& params, std::string_view variant);

}  // namespace ditrun::arch::detail
