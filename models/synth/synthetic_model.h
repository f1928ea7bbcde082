// `ditrun synth`: a model of a real architecture with deterministic random weights, in the
// real tensor naming and layout and any weight encoding, for tests and benchmarks. The
// weights are conceptually one bf16 model per (config, seed): every encoding is a
// conversion of the same bf16 values, so a q8_0 and an fp8 file of one seed are comparable.
#pragma once

#include <cstdint>
#include <string>

#include "models/arch/model_config.h"
#include "models/quant/converted_writer.h"

namespace ditrun::synth {

struct SynthRequest {
  arch::ModelConfig config;
  quant::ConversionTarget target;
  uint64_t seed = 0;
  std::string out_path;
};

// The metadata key under which ditrun records the full config in files it writes, so that
// configs not derivable from shapes (heads, RoPE axes, text length) survive the round trip.
inline constexpr const char* kConfigMetadataKey = "ditrun.config";

quant::WriteStats write_synthetic_model(const SynthRequest& request, const quant::WriteProgress& progress = {});

}  // namespace ditrun::synth
