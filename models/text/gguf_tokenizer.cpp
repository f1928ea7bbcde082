#include "models/text/gguf_tokenizer.h"

#include "runtime/core/error.h"

namespace ditrun::models::text {
namespace {

const std::vector<formats::GgufValue>& array_of(const formats::GgufIndex& index, const std::string& key,
                                                const std::string& source) {
  const formats::GgufValue* v = index.find(key);
  if (!v || v->type != formats::GgufType::ARRAY) fail("{}: GGUF tokenizer: no array '{}'", source, key);
  return std::get<std::vector<formats::GgufValue>>(v->value);
}

double number_of(const formats::GgufValue& v, const std::string& key, const std::string& source) {
  if (const auto* d = std::get_if<double>(&v.value)) return *d;
  if (const auto i = v.as_int()) return double(*i);
  fail("{}: GGUF tokenizer: '{}' holds a non-number", source, key);
}

}  // namespace

std::optional<UnigramVocab> unigram_vocab_from_gguf(const formats::GgufIndex& index, const std::string& source) {
  const formats::GgufValue* model = index.find("tokenizer.ggml.model");
  if (!model || model->as_string() != "t5") return std::nullopt;
  const auto& tokens = array_of(index, "tokenizer.ggml.tokens", source);
  const auto& scores = array_of(index, "tokenizer.ggml.scores", source);
  const auto& types = array_of(index, "tokenizer.ggml.token_type", source);
  if (scores.size() != tokens.size() || types.size() != tokens.size())
    fail("{}: GGUF tokenizer: {} tokens, {} scores, {} types", source, tokens.size(), scores.size(), types.size());
  UnigramVocab v;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto text = tokens[i].as_string();
    if (!text) fail("{}: GGUF tokenizer: token {} is not a string", source, i);
    const int type = int(number_of(types[i], "tokenizer.ggml.token_type", source));
    if (type < 1 || type > 6) fail("{}: GGUF tokenizer: token {} has type {}", source, i, type);
    v.pieces.push_back({*text, float(number_of(scores[i], "tokenizer.ggml.scores", source)), UnigramVocab::Type(type)});
    if (type == int(UnigramVocab::Type::Byte)) v.byte_fallback = true;
  }
  const auto id = [&](const char* key, int64_t fallback) {
    const formats::GgufValue* value = index.find(key);
    return value && value->as_int() ? *value->as_int() : fallback;
  };
  v.unk = id("tokenizer.ggml.unknown_token_id", 2);
  v.eos = id("tokenizer.ggml.eos_token_id", 1);
  v.pad = id("tokenizer.ggml.padding_token_id", 0);
  if (const formats::GgufValue* map = index.find("tokenizer.ggml.precompiled_charsmap")) {
    if (map->type == formats::GgufType::ARRAY)
      for (const auto& b : std::get<std::vector<formats::GgufValue>>(map->value))
        v.precompiled_charsmap += char(number_of(b, "tokenizer.ggml.precompiled_charsmap", source));
    else if (const auto s = map->as_string())
      v.precompiled_charsmap = *s;
  }
  return v;
}

std::vector<std::pair<std::string, formats::GgufValue>> gguf_tokenizer_metadata(const UnigramVocab& v) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int64_t> types;
  for (const UnigramVocab::Piece& p : v.pieces) {
    tokens.push_back(p.text);
    scores.push_back(p.score);
    types.push_back(int64_t(p.type));
  }
  using formats::GgufValue;
  std::vector<std::pair<std::string, GgufValue>> kv{{"tokenizer.ggml.model", GgufValue::string("t5")},
                                                     {"tokenizer.ggml.tokens", GgufValue::string_array(tokens)},
                                                     {"tokenizer.ggml.scores", GgufValue::f32_array(scores)},
                                                     {"tokenizer.ggml.token_type", GgufValue::i32_array(types)},
                                                     {"tokenizer.ggml.unknown_token_id", GgufValue::u32(uint32_t(v.unk))},
                                                     {"tokenizer.ggml.eos_token_id", GgufValue::u32(uint32_t(v.eos))},
                                                     {"tokenizer.ggml.padding_token_id", GgufValue::u32(uint32_t(v.pad))}};
  if (!v.precompiled_charsmap.empty())
    kv.emplace_back("tokenizer.ggml.precompiled_charsmap", GgufValue::u8_array(v.precompiled_charsmap));
  return kv;
}

}  // namespace ditrun::models::text
