// Which text encoder a file holds and its hyper-parameters, in one value: the released
// presets (t5-xxl, umt5-xxl, clip-l and tiny ones), the tensor layout under Hugging Face's
// names (what `synth` writes and the planner prices), and llama.cpp's T5 names (the GGUF
// `t5-v1_1-xxl-encoder-Q*.gguf` files) mapped to them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/text/clip_text_encoder.h"
#include "models/text/t5_encoder.h"

namespace ditrun::models::text {

struct TextEncoderConfig {
  std::string architecture = "t5";  // "t5", "umt5" or "clip-text"
  T5Params t5;
  ClipTextParams clip;

  bool is_clip() const { return architecture == "clip-text"; }
  int64_t width() const { return is_clip() ? clip.hidden_size : t5.dim; }  // the output's channels
  int64_t vocab() const { return is_clip() ? clip.vocab_size : t5.vocab; }
  int64_t layers() const { return is_clip() ? clip.num_layers : t5.num_layers; }
  // The reference configs' schema (`architecture`, `params`, T5's `hf_config`), as
  // ../shared/testdata/reference/*.config.json hold it; from_json reads those files.
  nlohmann::json to_json() const;
  static TextEncoderConfig from_json(const nlohmann::json& j, const std::string& source);
  bool operator==(const TextEncoderConfig&) const = default;
};

// "t5-xxl" (Flux's T5 v1.1 XXL), "umt5-xxl" (Wan's), "clip-l", and the tiny ones the built-in
// models use: "t5-tiny", "umt5-tiny", "clip-l-tiny" (sized to the tiny DiT presets' context).
TextEncoderConfig text_encoder_preset(const std::string& name);
std::vector<std::string> text_encoder_preset_names();

// Every tensor under Hugging Face's names, in file order.
std::vector<NamedShape> text_encoder_layout(const TextEncoderConfig& config);
// Whether a tensor belongs to one of the transformer's layers (the rest: embeddings, final
// norm, projection), and which layer (-1 for none).
int64_t text_encoder_layer_of(const std::string& hf_name);

// The T5/umT5 namings files use: Hugging Face's (`shared.weight`,
// `encoder.block.N.layer.0.SelfAttention.q.weight`, ...: ComfyUI's files), llama.cpp's
// (`token_embd.weight`, `enc.blk.N.attn_q.weight`, ...: the GGUF files) and Wan's own
// (`token_embedding.weight`, `blocks.N.attn.q.weight`, ...: its umt5-xxl checkpoint).
std::string_view to_string(T5Naming naming);
// A Hugging Face name in `naming` (`shared_pos`: Wan's T5 v1.1 keeps block 0's bias table
// at the top level), and a name in `naming` back to Hugging Face's; nullopt outside the map.
std::optional<std::string> t5_name_as(const std::string& hf_name, T5Naming naming, bool shared_pos = false);
std::optional<std::string> t5_name_from(const std::string& name, T5Naming naming);
// The naming of a T5 encoder's tensors (Hugging Face's when none matches), and the tensors
// under Hugging Face's names.
T5Naming t5_naming_of(const std::vector<NamedShape>& tensors);
std::vector<NamedShape> as_hf_t5_names(const std::vector<NamedShape>& tensors);
// What every tensor of T5 block `block` starts with in `naming`.
std::string t5_block_prefix(T5Naming naming, int64_t block);

}  // namespace ditrun::models::text
