// Prompts to token ids: CLIP's byte-level BPE (vocab.json + merges.txt, as openai's
// simple_tokenizer cleans and splits text) and SentencePiece unigram models (T5, umT5) read
// from a `.model` file, from Hugging Face's tokenizer.json, or from the `spiece_model` tensor
// some umT5 checkpoints embed. SentencePiece itself (Debian's libsentencepiece) runs the
// unigram models; ICU gives the Unicode properties and case mapping CLIP's cleaning needs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ditrun::formats {
class Checkpoint;
}

namespace ditrun::models::text {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // "clip-bpe" or "sentencepiece-unigram", and where it was read from.
  virtual std::string describe() const = 0;
  // The ids the model consumes before padding: CLIP start + tokens + end; T5 tokens + </s>.
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  // `ids` cut or padded to `length` as the model consumes them (CLIP: start, the first
  // length−2 tokens, end, then end-of-text padding; T5: the first length−1 tokens and </s>,
  // then <pad>). `truncated` (optional) says whether tokens were dropped.
  virtual std::vector<int64_t> fit(const std::vector<int64_t>& ids, int64_t length, bool* truncated = nullptr) const = 0;
  // The id fit() pads with (CLIP: end-of-text; T5: <pad>).
  virtual int64_t pad_id() const = 0;
};

// `ids` cut to `length` keeping `end` last, then padded with `pad`: what both tokenizers'
// fit() do with their own end and pad ids.
std::vector<int64_t> fit_ids(const std::vector<int64_t>& ids, int64_t length, int64_t end, int64_t pad, bool* truncated);

// PATH: a folder holding vocab.json + merges.txt (CLIP, used first) or tokenizer.json; a
// tokenizer.json; a SentencePiece `*.model`; or a .safetensors/.gguf checkpoint with an
// embedded `spiece_model` tensor or (GGUF) llama.cpp's tokenizer.ggml.* vocabulary. Fails with one line naming the file and what is wrong.
std::unique_ptr<Tokenizer> open_tokenizer(const std::string& path);
// The tokenizer a checkpoint embeds (`spiece_model`, or a GGUF's tokenizer.ggml.* vocabulary);
// null when it has none.
std::unique_ptr<Tokenizer> embedded_tokenizer(const formats::Checkpoint& checkpoint);

std::unique_ptr<Tokenizer> clip_tokenizer(const std::string& vocab_json, const std::string& merges_txt);

// A unigram vocabulary as SentencePiece's ModelProto holds it, whatever it was read from
// (tokenizer.json, a GGUF file's tokenizer.ggml.* keys) or made for (synthetic encoders).
struct UnigramVocab {
  enum class Type { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Byte = 6 };  // the proto's numbers
  struct Piece {
    std::string text;
    float score = 0;
    Type type = Type::Normal;
  };
  std::vector<Piece> pieces;
  int64_t unk = 2, eos = 1, pad = 0;
  bool byte_fallback = false;
  std::string precompiled_charsmap;  // empty: no normalisation beyond whitespace
};
// The serialized ModelProto sentencepiece loads (dummy prefix, extra whitespace removed).
std::string sentencepiece_model_proto(const UnigramVocab& vocab);
std::unique_ptr<Tokenizer> sentencepiece_from_model(std::span<const uint8_t> model_proto, const std::string& source);
std::unique_ptr<Tokenizer> sentencepiece_from_tokenizer_json(const std::string& path);

}  // namespace ditrun::models::text
