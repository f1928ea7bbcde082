#include "models/synth/synthetic_model.h"

#include <nlohmann/json.hpp>

#include "models/arch/layout.h"
#include "models/synth/synthetic_values.h"
#include "runtime/core/float_codecs.h"
#include "runtime/core/parallel.h"

namespace ditrun::synth {

quant::WriteStats write_synthetic_model(const SynthRequest& request, const quant::WriteProgress& progress) {
  const arch::ModelConfig& config = request.config;
  std::vector<quant::SourceTensor> tensors;
  for (const arch::TensorSpec& spec : arch::tensor_layout(config)) {
    quant::SourceTensor t;
    t.name = spec.name;
    t.shape = spec.shape;
    t.source = DType::BF16;
    const std::string unit = arch::placement_unit(config, spec.name);
    t.inside_block = unit != "prologue" && unit != "epilogue";
    t.fill = [seed = request.seed, spec](std::span<float> out) {
      parallel_for(int64_t(out.size()), 1 << 16, [&](int64_t b, int64_t e) {
        auto chunk = out.subspan(size_t(b), size_t(e - b));
        synthetic_values(seed, spec, uint64_t(b), chunk);
        for (float& v : chunk) v = bf16_to_f32(f32_to_bf16(v));  // the bf16 model every encoding converts
      });
    };
    tensors.push_back(std::move(t));
  }
  quant::ConvertedModelInfo info;
  info.architecture = std::string(arch::family_name(config.family));
  info.name = "ditrun synthetic " + config.variant + " seed " + std::to_string(request.seed);
  info.metadata[kConfigMetadataKey] = config.to_json().dump();
  info.metadata["ditrun.synth"] =
      nlohmann::json{{"seed", request.seed}, {"weights", request.target.spec}, {"variant", config.variant}}.dump();
  return quant::write_converted_model(request.out_path, request.target, config.family, tensors, info, progress);
}

}  // namespace ditrun::synth
