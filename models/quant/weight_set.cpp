#include "models/quant/weight_set.h"

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"

namespace ditrun::quant {
namespace {

constexpr std::string_view kAuxSuffixes[] = {".scale_weight", ".scale_input",   ".comfy_quant",    ".weight_scale",
                                             ".input_scale",  ".weight_scale_2", ".pre_quant_scale"};

// Per-layer tensors of the comfy_quant format that hold scales; their bytes belong to the
// layer's weight whatever its format (docs/formats.md 4d).
constexpr std::string_view kComfyScaleSuffixes[] = {".weight_scale", ".weight_scale_2", ".input_scale",
                                                    ".pre_quant_scale"};

std::vector<float> decode_all(const formats::Checkpoint& ck, const formats::TensorRecord& t) {
  std::vector<float> out(size_t(formats::element_count(t.shape)));
  try {
    dequantize_to_f32(t.dtype, ck.data(t), out);
  } catch (const Error& e) {
    fail("{}: tensor '{}': {}", ck.path(), t.name, e.what());
  }
  return out;
}

// The layer a weight belongs to: "double_blocks.0.img_attn.qkv" for "...qkv.weight".
std::string layer_of(const std::string& weight_name) {
  return weight_name.ends_with(".weight") ? weight_name.substr(0, weight_name.size() - 7) : weight_name;
}

float single_scale(const formats::Checkpoint& ck, const formats::TensorRecord& t) {
  if (formats::element_count(t.shape) != 1)
    fail("{}: tensor '{}' should hold one scale, has shape {}", ck.path(), t.name, formats::shape_string(t.shape));
  return decode_all(ck, t)[0];
}

bool is_layer_conf(const nlohmann::json& j) {
  return !j.is_discarded() && j.is_object() && j.contains("format") && j["format"].is_string();
}

// Per-layer comfy_quant configuration, from `<layer>.comfy_quant` tensors or the
// `_quantization_metadata` header entry. Every configuration is checked here to be an
// object with a "format" string, so later lookups cannot throw JSON exceptions.
std::unordered_map<std::string, nlohmann::json> comfy_quant_layers(const formats::Checkpoint& ck) {
  std::unordered_map<std::string, nlohmann::json> layers;
  const auto& meta = ck.safetensors_metadata();
  if (auto it = meta.find("_quantization_metadata"); it != meta.end()) {
    nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("layers") || !j["layers"].is_object())
      fail("{}: _quantization_metadata is not JSON with a 'layers' object", ck.path());
    // The header names layers by their full state-dict key; tensor names have had the
    // model prefix stripped, so strip it here too or no layer would match.
    const std::string& prefix = ck.stripped_prefix();
    for (auto& [name, conf] : j["layers"].items()) {
      if (!is_layer_conf(conf))
        fail("{}: _quantization_metadata layer '{}' is not an object with a 'format' string", ck.path(), name);
      const bool prefixed = !prefix.empty() && name.compare(0, prefix.size(), prefix) == 0;
      layers[prefixed ? name.substr(prefix.size()) : name] = conf;
    }
  }
  for (const auto& t : ck.tensors()) {
    if (!t.name.ends_with(".comfy_quant")) continue;
    if (t.dtype != DType::U8 && t.dtype != DType::I8) fail("{}: tensor '{}' must hold UTF-8 JSON bytes", ck.path(), t.name);
    const auto bytes = ck.data(t);
    nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (!is_layer_conf(j)) fail("{}: tensor '{}' is not JSON with a 'format' string", ck.path(), t.name);
    layers[t.name.substr(0, t.name.size() - 12)] = j;
  }
  return layers;
}

// Fills in a comfy_quant layer's weight from its configuration and scale tensors.
void attach_comfy_quant(const formats::Checkpoint& ck, const std::string& layer, const nlohmann::json& conf, Weight& w) {
  w.encoding = Encoding::ComfyQuant;
  for (auto suffix : kComfyScaleSuffixes)
    if (const auto* s = ck.find(layer + std::string(suffix))) w.scale_bytes += s->nbytes;
  const std::string format = conf["format"].get<std::string>();
  if (format != "float8_e4m3fn" && format != "float8_e5m2") {
    w.unsupported = "comfy_quant format '" + format + "' is not supported yet";
    return;
  }
  const DType expected = format == "float8_e4m3fn" ? DType::F8_E4M3 : DType::F8_E5M2;
  // The format names the storage type; a mismatch would decode every value wrongly.
  if (w.storage != expected)
    fail("{}: '{}' is comfy_quant {} but stored as {}", ck.path(), w.name, format, dtype_name(w.storage));
  if (const auto* s = ck.find(layer + ".weight_scale")) {
    w.scales = {single_scale(ck, *s)};
    w.scale_layout = ScaleLayout::PerTensor;
  }
  if (const auto* s = ck.find(layer + ".input_scale")) w.input_scale = single_scale(ck, *s);
}

// Interprets a musubi / ComfyUI `scale_weight` by its shape (docs/formats.md, section 4).
void attach_scale_weight(const formats::Checkpoint& ck, const formats::TensorRecord& scale, Weight& w) {
  const int64_t n = formats::element_count(scale.shape);
  w.scale_bytes += scale.nbytes;
  w.scales = decode_all(ck, scale);
  if (n == 1) {
    // ComfyUI and Kijai write f32 scalars; musubi's per-tensor fallback keeps the weight's
    // original dtype, which is how the two are told apart when there is no marker.
    w.scale_layout = ScaleLayout::PerTensor;
    const bool comfy_style = ck.find("scaled_fp8") != nullptr || scale.dtype == DType::F32;
    w.encoding = comfy_style ? Encoding::ScaledFp8 : Encoding::BlockFp8;
    return;
  }
  w.encoding = Encoding::BlockFp8;
  const int64_t rows = w.rows(), cols = w.cols();
  const bool rows_match = !scale.shape.empty() && scale.shape[0] == rows;
  if (rows_match && n == rows) {
    w.scale_layout = ScaleLayout::PerRow;  // [out, 1] or [out]
    return;
  }
  if (rows_match && scale.shape.size() >= 2 && n % rows == 0) {
    const int64_t per_row = n / rows;  // [out, in/B, 1] or [out, in] (element-wise)
    if (per_row > 0 && cols % per_row == 0) {
      w.scale_layout = ScaleLayout::PerBlock;
      w.scale_block = cols / per_row;
      return;
    }
  }
  fail("{}: '{}' shape {} does not fit weight '{}' of shape {}", ck.path(), scale.name, formats::shape_string(scale.shape),
       w.name, formats::shape_string(w.shape));
}

}  // namespace

bool is_auxiliary_tensor(std::string_view name) {
  if (name == "scaled_fp8") return true;
  for (auto suffix : kAuxSuffixes)
    if (name.ends_with(suffix)) return true;
  return false;
}

WeightSet::WeightSet(const formats::Checkpoint& ck) : checkpoint_(ck) {
  if (const auto* marker = ck.find("scaled_fp8")) {
    has_marker_ = true;
    fp8_matmul_allowed_ = formats::element_count(marker->shape) != 2;
  }
  const auto comfy_layers = comfy_quant_layers(ck);
  for (const auto& t : ck.tensors()) {
    if (is_auxiliary_tensor(t.name)) continue;
    Weight w;
    w.name = t.name;
    w.shape = t.shape;
    w.storage = t.dtype;
    w.bytes = ck.data(t);
    w.encoding = ck.format() == formats::FileFormat::Gguf && dtype_info(t.dtype).kind == DTypeKind::Quantized
                     ? Encoding::Gguf
                     : Encoding::Plain;
    const std::string layer = layer_of(t.name);
    const bool is_weight = layer != t.name;
    if (auto it = comfy_layers.find(layer); is_weight && it != comfy_layers.end()) {
      attach_comfy_quant(ck, layer, it->second, w);
    } else if (const auto* s = is_weight ? ck.find(layer + ".scale_weight") : nullptr) {
      attach_scale_weight(ck, *s, w);
      if (const auto* si = ck.find(layer + ".scale_input")) {
        w.input_scale = single_scale(ck, *si);
        w.scale_bytes += si->nbytes;
      }
    }
    by_name_.emplace(w.name, weights_.size());
    weights_.push_back(std::move(w));
  }
}

const Weight* WeightSet::find(std::string_view name) const {
  const auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &weights_[it->second];
}

const Weight& WeightSet::at(std::string_view name) const {
  const Weight* w = find(name);
  if (!w) fail("{}: no weight named '{}'", checkpoint_.path(), name);
  return *w;
}

}  // namespace ditrun::quant
