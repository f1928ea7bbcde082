// Opening a text encoder for a command: the checkpoint, its weights, its config and its
// tokenizer. The config comes from a sidecar JSON (the reference configs' schema), else the
// one ditrun recorded in the file (ditrun.text_encoder), else the tensor names and shapes
// (Hugging Face's or llama.cpp's). The tokenizer is looked for in this order: the path given,
// the `spiece_model` tensor some umT5 checkpoints embed or the tokenizer.ggml.* vocabulary of
// llama.cpp's T5 GGUF files, a `<file>.tokenizer/` folder beside
// the file (what `synth` writes), then the extra places the caller names (ComfyUI's own
// tokenizer folders).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/formats/checkpoint.h"
#include "models/quant/weight_set.h"
#include "models/text/text_encoder_config.h"
#include "models/text/tokenizer.h"

namespace ditrun::models::text {

struct TextEncoderSource {
  std::string path;
  TextEncoderConfig config;
  std::string config_source;  // "sidecar PATH", "recorded in the file", "detected"
  std::unique_ptr<formats::Checkpoint> checkpoint;
  std::unique_ptr<quant::WeightSet> weights;
  std::unique_ptr<Tokenizer> tokenizer;  // null when not asked for

  uint64_t weight_bytes() const;  // stored bytes of every weight (what placing it costs)
  std::string describe() const;   // "t5 (24 layers, width 4096, 9.5 GB) from PATH"
};

// "t5", "umt5", "clip-text" for a text encoder's tensors; nullopt for anything else.
std::optional<std::string> text_encoder_architecture(const std::vector<NamedShape>& tensors);

struct TokenizerSearch {
  std::optional<std::string> path;        // given by the user: used, or an error
  std::vector<std::string> extra_places;  // tried last, in order, when they exist
};

// Fails with one line naming the file and what is wrong (not a text encoder, no tokenizer
// found: where it looked).
TextEncoderSource open_text_encoder(const std::string& path, const std::optional<std::string>& sidecar = std::nullopt,
                                    const std::optional<TokenizerSearch>& tokenizer = std::nullopt);
// The same for a checkpoint already opened (and its weights resolved) to tell what it is.
TextEncoderSource open_text_encoder(std::unique_ptr<formats::Checkpoint> checkpoint,
                                    std::unique_ptr<quant::WeightSet> weights, const std::optional<std::string>& sidecar,
                                    const std::optional<TokenizerSearch>& tokenizer = std::nullopt);

}  // namespace ditrun::models::text
