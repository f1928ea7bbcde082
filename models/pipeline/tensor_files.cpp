#include "models/pipeline/tensor_files.h"

#include "models/formats/checkpoint.h"
#include "models/formats/safetensors.h"
#include "runtime/core/error.h"

namespace ditrun::models {

runtime::HostTensors read_host_tensors(const std::string& path, std::string_view prefix) {
  const formats::Checkpoint file(path);
  if (file.format() != formats::FileFormat::Safetensors) fail("{}: expected a safetensors file", path);
  runtime::HostTensors out;
  for (const formats::TensorRecord& t : file.tensors()) {
    if (!t.name.starts_with(prefix)) continue;
    HostTensor h(t.shape);
    try {
      dequantize_to_f32(t.dtype, file.data(t), h.data);
    } catch (const Error& e) {
      fail("{}: tensor '{}': {}", path, t.name, e.what());
    }
    out.emplace(t.name.substr(prefix.size()), std::move(h));
  }
  return out;
}

void write_host_tensors(const std::string& path, const std::vector<std::pair<std::string, const HostTensor*>>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  std::vector<formats::SafetensorsEntry> entries;
  for (const auto& [name, t] : tensors) entries.push_back({name, DType::F32, t->shape});
  formats::SafetensorsWriter writer(path, entries, metadata);
  for (const auto& [name, t] : tensors)
    writer.write_next({reinterpret_cast<const uint8_t*>(t->data.data()), t->data.size() * sizeof(float)});
  writer.finish();
}

}  // namespace ditrun::models
