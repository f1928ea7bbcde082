// A text encoder of a real design with deterministic random weights (the built-in models'
// encoders, tests, the T5-XXL benchmark), in any weight encoding `synth` writes: safetensors
// under Hugging Face's names, GGUF under llama.cpp's (as the released T5 GGUF files). Its
// config goes into the file's metadata and a tokenizer of its vocabulary beside it, in
// `<file without extension>.tokenizer/` (spiece.model, or vocab.json + merges.txt).
#pragma once

#include <cstdint>
#include <string>

#include "models/quant/converted_writer.h"
#include "models/text/text_encoder_config.h"

namespace ditrun::models::text {

// The metadata key holding TextEncoderConfig::to_json().
inline constexpr const char* kTextEncoderMetadataKey = "ditrun.text_encoder";

// The tokenizer folder `synth` writes beside an encoder file.
std::string tokenizer_folder_beside(const std::string& encoder_path);

quant::WriteStats write_synthetic_text_encoder(const TextEncoderConfig& config, const quant::ConversionTarget& target,
                                               uint64_t seed, const std::string& path,
                                               const quant::WriteProgress& progress = {});

}  // namespace ditrun::models::text
