#include "models/formats/checkpoint.h"

#include <algorithm>
#include <cstring>

#include "runtime/core/error.h"

namespace ditrun::formats {

std::string_view file_format_name(FileFormat f) { return f == FileFormat::Gguf ? "gguf" : "safetensors"; }

std::string detect_model_prefix(const std::vector<std::string>& names) {
  static constexpr std::string_view kPrefixes[] = {"model.diffusion_model.", "model.model.", "net."};
  for (std::string_view prefix : kPrefixes) {
    const size_t hits = size_t(std::count_if(names.begin(), names.end(), [&](const std::string& n) {
      return n.size() > prefix.size() && n.compare(0, prefix.size(), prefix) == 0;
    }));
    // ComfyUI's rule is "more than 5 keys"; a tiny file whose every key has it counts too.
    if (hits > 5 || (hits > 0 && hits == names.size())) return std::string(prefix);
  }
  return "";
}

namespace {

bool looks_like_gguf(std::span<const uint8_t> bytes) { return bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0; }

// ComfyUI-GGUF records the PyTorch shape of reshaped tensors as comfy.gguf.orig_shape.<name>.
void apply_orig_shapes(const GgufIndex& index, std::vector<TensorRecord>& tensors, const std::string& source) {
  static constexpr std::string_view kKey = "comfy.gguf.orig_shape.";
  for (auto& t : tensors) {
    const GgufValue* v = index.find(std::string(kKey) + t.name);
    if (!v) continue;
    const auto* items = std::get_if<std::vector<GgufValue>>(&v->value);
    if (!items) fail("{}: {}{} is not an array", source, kKey, t.name);
    Shape shape;
    for (const auto& item : *items) {
      const auto d = item.as_int();
      if (!d || *d < 0) fail("{}: {}{} holds a non-integer or negative dim", source, kKey, t.name);
      shape.push_back(*d);
    }
    if (element_count(shape) != element_count(t.shape))
      fail("{}: tensor '{}' original shape {} does not match its {} elements", source, t.name, shape_string(shape),
           element_count(t.shape));
    t.shape = std::move(shape);
  }
}

}  // namespace

Checkpoint::Checkpoint(const std::string& path) : file_(path) {
  std::vector<TensorRecord> all;
  if (looks_like_gguf(file_.bytes())) {
    format_ = FileFormat::Gguf;
    gguf_ = parse_gguf(file_.bytes(), path);
    all = gguf_->tensors;
    apply_orig_shapes(*gguf_, all, path);
  } else {
    format_ = FileFormat::Safetensors;
    SafetensorsIndex index = parse_safetensors(file_.bytes(), path);
    all = std::move(index.tensors);
    st_metadata_ = std::move(index.metadata);
  }
  std::vector<std::string> names;
  names.reserve(all.size());
  for (const auto& t : all) names.push_back(t.name);
  prefix_ = detect_model_prefix(names);
  for (auto& t : all) {
    if (!prefix_.empty()) {
      if (t.name.compare(0, prefix_.size(), prefix_) != 0) {
        ++other_components_;
        continue;
      }
      t.name.erase(0, prefix_.size());
    }
    if (!by_name_.emplace(t.name, tensors_.size()).second)
      fail("{}: tensor '{}' appears twice after stripping '{}'", path, t.name, prefix_);
    tensors_.push_back(std::move(t));
  }
}

const TensorRecord* Checkpoint::find(std::string_view name) const {
  const auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const TensorRecord& Checkpoint::at(std::string_view name) const {
  const TensorRecord* t = find(name);
  if (!t) fail("{}: no tensor named '{}'", path(), name);
  return *t;
}

std::optional<std::string> Checkpoint::gguf_architecture() const {
  if (!gguf_) return std::nullopt;
  const GgufValue* v = gguf_->find("general.architecture");
  return v ? v->as_string() : std::nullopt;
}

}  // namespace ditrun::formats
