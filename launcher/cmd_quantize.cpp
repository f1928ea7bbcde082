// `ditrun quantize IN OUT --to TYPE`: converts a checkpoint to another weight encoding,
// following the community converters' rules for which tensors stay high precision
// (models/quant/conversion.h). Tensor by tensor: the model is never in memory twice.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "launcher/commands.h"
#include "runtime/core/progress.h"
#include "runtime/core/units.h"
#include "models/arch/layout.h"
#include "models/pipeline/model_source.h"
#include "models/synth/synthetic_model.h"

namespace ditrun::launcher {
namespace {

void run_quantize(const std::string& in, const std::string& out, const std::string& to,
                  const std::optional<std::string>& sidecar) {
  const quant::ConversionTarget target = quant::ConversionTarget::parse(to);
  quant::check_container_fits(out, target);
  const models::ModelSource src = models::open_model(in, sidecar);
  std::vector<quant::SourceTensor> tensors;
  for (const quant::Weight& w : src.weights->weights()) {
    quant::SourceTensor t;
    t.name = w.name;
    t.shape = w.shape;
    t.source = w.storage;
    const std::string unit = arch::placement_unit(src.config, w.name);
    t.inside_block = unit != "prologue" && unit != "epilogue";
    t.fill = [&w](std::span<float> values) { w.dequantize(values); };
    tensors.push_back(std::move(t));
  }
  quant::ConvertedModelInfo info;
  info.architecture = std::string(arch::family_name(src.config.family));
  info.name = src.config.variant + " " + target.spec;
  info.metadata[synth::kConfigMetadataKey] = src.config.to_json().dump();
  spdlog::info("quantize: {} ({}) -> {} as {}", in, src.config.variant, out, target.spec);
  Progress progress("quantize", "tensors");
  const auto stats = quant::write_converted_model(out, target, src.config.family, tensors, info,
                                                  [&](size_t d, size_t n, const std::string& name) { progress.update(d, n, name); });
  std::string by_type;
  for (const auto& [type, bytes] : stats.bytes_by_type) by_type += fmt::format(" {} {}", type, format_bytes(uint64_t(bytes)));
  progress.finish(fmt::format("wrote {} ({} tensors, {};{})", out, stats.tensors_written, format_bytes(uint64_t(stats.bytes)), by_type));
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "Convert a checkpoint to another weight encoding");
  static std::string in, out, to;
  static std::optional<std::string> sidecar;
  cmd->add_option("in", in, "Input .safetensors or .gguf")->required();
  cmd->add_option("out", out, "Output .safetensors or .gguf")->required();
  cmd->add_option("--to", to, "Target encoding: " + quant::conversion_targets_help())->required();
  cmd->add_option("--config", sidecar, "A sidecar config JSON for the input");
  cmd->callback([] { run_quantize(in, out, to, sidecar); });
}

}  // namespace ditrun::launcher
