#include "models/quant/converted_writer.h"

#include <memory>

#include "models/formats/gguf.h"
#include "models/formats/safetensors.h"
#include "runtime/core/error.h"

namespace ditrun::quant {

bool path_is_gguf(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
}

void check_container_fits(const std::string& path, const ConversionTarget& target) {
  const bool gguf = path_is_gguf(path);
  if (gguf && (target.kind == TargetKind::Fp8 || target.kind == TargetKind::Fp8Scaled || target.kind == TargetKind::Fp8Block))
    fail("{}: GGUF cannot hold {} weights; write a .safetensors file", path, target.spec);
  if (!gguf && target.kind == TargetKind::Gguf) fail("{}: {} is a GGUF type; write a .gguf file", path, target.spec);
}

WriteStats write_converted_model(const std::string& path, const ConversionTarget& target, std::optional<arch::Family> family,
                                 const std::vector<SourceTensor>& tensors, const ConvertedModelInfo& info,
                                 const WriteProgress& progress) {
  check_container_fits(path, target);
  const bool gguf = path_is_gguf(path);

  // Plan every tensor first: both containers declare all tensors before any data.
  std::vector<TensorConversion> plans;
  std::vector<OutputTensor> outputs;
  if (target.kind == TargetKind::Fp8Scaled) outputs.push_back({"scaled_fp8", DType::F8_E4M3, {0}});  // ComfyUI's marker
  for (const auto& t : tensors) {
    plans.push_back(plan_conversion(target, family, t.name, t.shape, t.source, t.inside_block));
    for (auto& o : conversion_outputs(plans.back(), t.name, t.shape, t.source, target.block)) outputs.push_back(std::move(o));
  }

  std::unique_ptr<formats::SafetensorsWriter> st;
  std::unique_ptr<formats::GgufWriter> gg;
  if (gguf) {
    std::vector<std::pair<std::string, formats::GgufValue>> kv;
    kv.emplace_back("general.architecture", formats::GgufValue::string(info.architecture));
    kv.emplace_back("general.name", formats::GgufValue::string(info.name));
    kv.emplace_back("general.quantization_version", formats::GgufValue::u32(2));
    kv.emplace_back("general.file_type", formats::GgufValue::u32(target.gguf_file_type()));
    for (const auto& [k, v] : info.metadata) kv.emplace_back(k, formats::GgufValue::string(v));
    for (const auto& [k, v] : info.gguf_metadata) kv.emplace_back(k, v);
    std::vector<formats::GgufEntry> entries;
    for (const auto& o : outputs) entries.push_back({o.name, o.dtype, o.shape});
    gg = std::make_unique<formats::GgufWriter>(path, std::move(kv), std::move(entries));
  } else {
    std::vector<formats::SafetensorsEntry> entries;
    for (const auto& o : outputs) entries.push_back({o.name, o.dtype, o.shape});
    st = std::make_unique<formats::SafetensorsWriter>(path, std::move(entries), info.metadata);
  }

  WriteStats stats;
  size_t out_index = 0;
  auto emit = [&](std::span<const uint8_t> bytes) {
    const OutputTensor& o = outputs[out_index++];
    if (gg) gg->write_next(bytes); else st->write_next(bytes);
    stats.bytes += bytes.size();
    stats.bytes_by_type[std::string(dtype_name(o.dtype))] += bytes.size();
    ++stats.tensors_written;
  };
  if (target.kind == TargetKind::Fp8Scaled) emit({});

  std::vector<float> values;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SourceTensor& t = tensors[i];
    if (progress) progress(i, tensors.size(), t.name);
    values.resize(size_t(formats::element_count(t.shape)));
    t.fill(values);
    for (const auto& bytes : encode_conversion(plans[i], values, t.shape, t.source, target.block)) emit(bytes);
  }
  if (progress) progress(tensors.size(), tensors.size(), "");
  if (gg) gg->finish(); else st->finish();
  return stats;
}

}  // namespace ditrun::quant
