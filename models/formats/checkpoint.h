// A checkpoint file of either container format, opened by content (not by extension), with
// the diffusion model's tensors presented under their original (reference-code) names:
// a ComfyUI prefix such as `model.diffusion_model.` is stripped, and tensors of other
// components in all-in-one files (VAE, text encoders) are set aside.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/formats/gguf.h"
#include "models/formats/mapped_file.h"
#include "models/formats/safetensors.h"
#include "models/formats/tensor_record.h"

namespace ditrun::formats {

enum class FileFormat { Safetensors, Gguf };
std::string_view file_format_name(FileFormat f);

class Checkpoint {
 public:
  // Opens, maps and validates `path`; fails with a one-line ditrun::Error on any problem.
  explicit Checkpoint(const std::string& path);

  FileFormat format() const { return format_; }
  const std::string& path() const { return file_.path(); }
  uint64_t file_bytes() const { return file_.size(); }

  // The diffusion model's tensors in file order, names with the prefix stripped.
  const std::vector<TensorRecord>& tensors() const { return tensors_; }
  const TensorRecord* find(std::string_view name) const;
  const TensorRecord& at(std::string_view name) const;  // fails naming the file and tensor
  std::span<const uint8_t> data(const TensorRecord& t) const { return file_.bytes().subspan(t.offset, t.nbytes); }

  const std::string& stripped_prefix() const { return prefix_; }
  size_t other_component_tensors() const { return other_components_; }

  // Container metadata: safetensors `__metadata__`, or GGUF key/values.
  const std::map<std::string, std::string>& safetensors_metadata() const { return st_metadata_; }
  const GgufIndex* gguf() const { return gguf_ ? &*gguf_ : nullptr; }
  std::optional<std::string> gguf_architecture() const;

 private:
  MappedFile file_;
  FileFormat format_;
  std::vector<TensorRecord> tensors_;
  std::unordered_map<std::string, size_t> by_name_;
  std::string prefix_;
  size_t other_components_ = 0;
  std::map<std::string, std::string> st_metadata_;
  std::optional<GgufIndex> gguf_;
};

// The prefixes ComfyUI recognises for a diffusion model inside a larger checkpoint.
std::string detect_model_prefix(const std::vector<std::string>& names);

}  // namespace ditrun::formats
