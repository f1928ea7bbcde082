// Writes a model in a target encoding (conversion.h) to safetensors or GGUF, chosen by the
// output's extension, streaming one tensor at a time: the model is never in memory twice.
#pragma once

#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "models/formats/gguf.h"
#include "models/quant/conversion.h"

namespace ditrun::quant {

struct SourceTensor {
  std::string name;
  Shape shape;
  DType source = DType::BF16;  // the type it is stored in at the source (decides kept floats)
  bool inside_block = false;   // part of a transformer block (fp8 targets quantize only these)
  std::function<void(std::span<float>)> fill;  // produces the tensor's real values
};

struct ConvertedModelInfo {
  std::string architecture;  // GGUF general.architecture
  std::string name;          // GGUF general.name
  std::map<std::string, std::string> metadata;  // safetensors __metadata__ / GGUF string keys
  std::vector<std::pair<std::string, formats::GgufValue>> gguf_metadata;  // typed GGUF keys (tokenizers)
};

struct WriteStats {
  size_t tensors_written = 0;
  uint64_t bytes = 0;
  std::map<std::string, uint64_t> bytes_by_type;
};

using WriteProgress = std::function<void(size_t done, size_t total, const std::string& tensor)>;

bool path_is_gguf(const std::string& path);
// Fails unless the output's container (by extension) can hold the target encoding.
void check_container_fits(const std::string& path, const ConversionTarget& target);

WriteStats write_converted_model(const std::string& path, const ConversionTarget& target, std::optional<arch::Family> family,
                                 const std::vector<SourceTensor>& tensors, const ConvertedModelInfo& info,
                                 const WriteProgress& progress = {});

}  // namespace ditrun::quant
