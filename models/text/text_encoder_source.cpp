#include "models/text/text_encoder_source.h"

#include <fmt/format.h>

#include <filesystem>

#include "models/pipeline/model_source.h"
#include "models/text/text_encoder_synth.h"
#include "runtime/core/error.h"
#include "runtime/core/units.h"

namespace ditrun::models::text {
namespace {

std::optional<std::string> recorded_config(const formats::Checkpoint& ck) {
  if (const auto* gguf = ck.gguf()) {
    if (const auto* v = gguf->find(kTextEncoderMetadataKey)) return v->as_string();
    return std::nullopt;
  }
  const auto& meta = ck.safetensors_metadata();
  if (auto it = meta.find(kTextEncoderMetadataKey); it != meta.end()) return it->second;
  return std::nullopt;
}

std::unique_ptr<Tokenizer> find_tokenizer(const TextEncoderSource& src, const TokenizerSearch& search) {
  if (search.path) return open_tokenizer(*search.path);
  if (auto embedded = embedded_tokenizer(*src.checkpoint)) return embedded;
  std::vector<std::string> places{tokenizer_folder_beside(src.path)};
  places.insert(places.end(), search.extra_places.begin(), search.extra_places.end());
  std::error_code ec;
  for (const std::string& place : places)
    if (std::filesystem::exists(place, ec)) return open_tokenizer(place);
  fail("{}: no tokenizer for this {} encoder: not embedded, not in {}; give one ({})", src.path,
       src.config.architecture, fmt::join(places, " or "),
       src.config.is_clip() ? "a folder with vocab.json + merges.txt, e.g. ComfyUI's comfy/sd1_tokenizer"
                            : "a tokenizer.json or spiece.model, e.g. ComfyUI's comfy/t5_tokenizer");
}

}  // namespace

uint64_t TextEncoderSource::weight_bytes() const {
  uint64_t bytes = 0;
  for (const Weight& w : weights->weights()) bytes += w.stored_bytes();
  return bytes;
}

std::string TextEncoderSource::describe() const {
  return fmt::format("{} ({} layers, width {}, {}) from {}", config.architecture, config.layers(), config.width(),
                     format_bytes(weight_bytes()), path);
}

std::optional<std::string> text_encoder_architecture(const std::vector<NamedShape>& tensors) {
  if (looks_like_t5(tensors)) {
    const auto hf = as_hf_t5_names(tensors);
    const bool own_tables = std::any_of(hf.begin(), hf.end(), [](const NamedShape& s) {
      return s.name == "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight";
    });
    return own_tables ? "umt5" : "t5";
  }
  if (looks_like_clip_text(tensors)) return "clip-text";
  return std::nullopt;
}

TextEncoderSource open_text_encoder(const std::string& path, const std::optional<std::string>& sidecar,
                                    const std::optional<TokenizerSearch>& tokenizer) {
  auto checkpoint = std::make_unique<formats::Checkpoint>(path);
  auto weights = std::make_unique<quant::WeightSet>(*checkpoint);
  return open_text_encoder(std::move(checkpoint), std::move(weights), sidecar, tokenizer);
}

TextEncoderSource open_text_encoder(std::unique_ptr<formats::Checkpoint> checkpoint,
                                    std::unique_ptr<quant::WeightSet> weights, const std::optional<std::string>& sidecar,
                                    const std::optional<TokenizerSearch>& tokenizer) {
  TextEncoderSource src;
  src.path = checkpoint->path();
  const std::string& path = src.path;
  src.checkpoint = std::move(checkpoint);
  src.weights = std::move(weights);
  const std::vector<NamedShape> shapes = named_shapes(*src.weights);
  if (sidecar) {
    src.config = TextEncoderConfig::from_json(read_json_file(*sidecar), *sidecar);
    src.config_source = "sidecar " + *sidecar;
  } else if (const auto recorded = recorded_config(*src.checkpoint)) {
    const nlohmann::json j = nlohmann::json::parse(*recorded, nullptr, false);
    if (j.is_discarded()) fail("{}: metadata {} is not valid JSON", path, kTextEncoderMetadataKey);
    src.config = TextEncoderConfig::from_json(j, path + " (" + kTextEncoderMetadataKey + ")");
    src.config_source = "recorded in the file";
  } else {
    const auto architecture = text_encoder_architecture(shapes);
    if (!architecture) fail("{}: not a text encoder (no T5/umT5 or CLIP text tensors)", path);
    src.config.architecture = *architecture;
    if (src.config.is_clip()) src.config.clip = detect_clip_text(shapes, path);
    else src.config.t5 = detect_t5(shapes, path);
    src.config_source = "detected";
  }
  if (tokenizer) src.tokenizer = find_tokenizer(src, *tokenizer);
  return src;
}

}  // namespace ditrun::models::text
