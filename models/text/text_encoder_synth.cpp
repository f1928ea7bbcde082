#include "models/text/text_encoder_synth.h"

#include <filesystem>

#include "models/synth/synthetic_values.h"
#include "models/text/gguf_tokenizer.h"
#include "models/text/synthetic_tokenizers.h"
#include "runtime/core/atomic_file.h"
#include "runtime/core/float_codecs.h"
#include "runtime/core/parallel.h"

namespace ditrun::models::text {
namespace {

// The role that sets a tensor's scale (synthetic_values.h).
arch::TensorRole role_of(const NamedShape& t) {
  const bool norm = t.name.find("norm") != std::string::npos;
  if (norm) return t.name.ends_with(".bias") ? arch::TensorRole::Bias : arch::TensorRole::NormScale;
  if (t.name.ends_with(".bias")) return arch::TensorRole::Bias;
  if (t.shape.size() == 2 && text_encoder_layer_of(t.name) >= 0 && t.name.find("relative_attention_bias") == std::string::npos)
    return arch::TensorRole::LinearWeight;
  if (t.name == "text_projection.weight") return arch::TensorRole::LinearWeight;
  return arch::TensorRole::Other;  // embeddings, position-bias tables
}

void write_tokenizer(const TextEncoderConfig& config, const std::string& dir) {
  if (config.is_clip()) return write_synthetic_clip_tokenizer(dir, config.vocab());
  std::filesystem::create_directories(dir);
  const std::string proto = sentencepiece_model_proto(synthetic_unigram_vocab(config.vocab()));
  AtomicFile file((std::filesystem::path(dir) / "spiece.model").string());
  file.write(proto.data(), proto.size());
  file.commit();
}

}  // namespace

std::string tokenizer_folder_beside(const std::string& encoder_path) {
  return std::filesystem::path(encoder_path).replace_extension(".tokenizer").string();
}

quant::WriteStats write_synthetic_text_encoder(const TextEncoderConfig& config, const quant::ConversionTarget& target,
                                               uint64_t seed, const std::string& path,
                                               const quant::WriteProgress& progress) {
  const bool llama_names = quant::path_is_gguf(path) && !config.is_clip();
  std::vector<quant::SourceTensor> tensors;
  for (const NamedShape& t : text_encoder_layout(config)) {
    quant::SourceTensor s;
    s.name = llama_names ? t5_name_as(t.name, T5Naming::LlamaCpp).value() : t.name;
    s.shape = t.shape;
    s.source = DType::BF16;
    s.inside_block = text_encoder_layer_of(t.name) >= 0;
    // Values keyed by the Hugging Face name: the GGUF and safetensors files of a seed agree.
    s.fill = [seed, spec = arch::TensorSpec{t.name, t.shape, role_of(t)}](std::span<float> out) {
      parallel_for(int64_t(out.size()), 1 << 16, [&](int64_t b, int64_t e) {
        auto chunk = out.subspan(size_t(b), size_t(e - b));
        synth::synthetic_values(seed, spec, uint64_t(b), chunk);
        for (float& v : chunk) v = bf16_to_f32(f32_to_bf16(v));
      });
    };
    tensors.push_back(std::move(s));
  }
  quant::ConvertedModelInfo info;
  // A GGUF T5 carries its vocabulary in its metadata, as llama.cpp writes it; the others get
  // a tokenizer folder beside them.
  if (llama_names) info.gguf_metadata = gguf_tokenizer_metadata(synthetic_unigram_vocab(config.vocab()));
  else write_tokenizer(config, tokenizer_folder_beside(path));
  info.architecture = config.is_clip() ? "clip-text" : "t5encoder";  // llama.cpp's name for a T5 encoder
  info.name = "ditrun synthetic " + config.architecture + " seed " + std::to_string(seed);
  info.metadata[kTextEncoderMetadataKey] = config.to_json().dump();
  return quant::write_converted_model(path, target, std::nullopt, tensors, info, progress);
}

}  // namespace ditrun::models::text
