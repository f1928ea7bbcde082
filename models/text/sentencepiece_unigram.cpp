// SentencePiece unigram models through libsentencepiece. A Hugging Face tokenizer.json is
// turned into the ModelProto sentencepiece reads (pieces and scores, the unknown and control
// tokens, the precompiled normalisation map, dummy prefix, extra-whitespace removal): the
// proto2 wire format is written here by hand, as the Debian package ships no .proto headers.
#include <sentencepiece_processor.h>

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "models/text/tokenizer.h"
#include "runtime/core/error.h"

namespace ditrun::models::text {
namespace {

// ---- the proto2 wire format, writing only
class ProtoWriter {
 public:
  void varint_field(int field, uint64_t v) {
    key(field, 0);
    varint(v);
  }
  void int32_field(int field, int64_t v) { varint_field(field, uint64_t(v)); }  // negatives: 10 bytes, as proto2
  void float_field(int field, float v) {
    key(field, 5);
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int i = 0; i < 4; ++i) out_.push_back(char(bits >> (8 * i)));
  }
  void bytes_field(int field, std::string_view bytes) {
    key(field, 2);
    varint(bytes.size());
    out_.append(bytes);
  }
  const std::string& bytes() const { return out_; }

 private:
  void key(int field, int wire_type) { varint(uint64_t(field) << 3 | uint64_t(wire_type)); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(char(v | 0x80));
      v >>= 7;
    }
    out_.push_back(char(v));
  }
  std::string out_;
};

std::string base64_decode(const std::string& in, const std::string& source) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) fail("{}: precompiled_charsmap is not base64", source);
    acc = acc << 6 | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char(acc >> bits & 0xFF));
    }
  }
  return out;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(std::string_view model_proto, std::string source) : source_(std::move(source)) {
    const auto status = processor_.LoadFromSerializedProto(model_proto);
    if (!status.ok()) fail("{}: not a SentencePiece model: {}", source_, status.ToString());
    eos_ = processor_.eos_id();
    pad_ = processor_.pad_id();
    if (eos_ < 0) fail("{}: the SentencePiece model has no end-of-sequence piece", source_);
  }

  std::string describe() const override {
    return fmt::format("sentencepiece-unigram ({} pieces) from {}", processor_.GetPieceSize(), source_);
  }

  std::vector<int64_t> encode(const std::string& text) const override {
    std::vector<int> ids;
    const auto status = processor_.Encode(text, &ids);
    if (!status.ok()) fail("{}: cannot tokenize: {}", source_, status.ToString());
    std::vector<int64_t> out(ids.begin(), ids.end());
    out.push_back(eos_);
    return out;
  }

  std::vector<int64_t> fit(const std::vector<int64_t>& ids, int64_t length, bool* truncated) const override {
    return fit_ids(ids, length, eos_, pad_id(), truncated);
  }
  int64_t pad_id() const override { return pad_ >= 0 ? pad_ : 0; }

 private:
  sentencepiece::SentencePieceProcessor processor_;
  std::string source_;
  int64_t eos_ = 1, pad_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> sentencepiece_from_model(std::span<const uint8_t> model_proto, const std::string& source) {
  return std::make_unique<SentencePieceTokenizer>(
      std::string_view(reinterpret_cast<const char*>(model_proto.data()), model_proto.size()), source);
}

std::unique_ptr<Tokenizer> sentencepiece_from_tokenizer_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open", path);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("{}: not valid JSON", path);
  const nlohmann::json& model = j.value("model", nlohmann::json::object());
  if (model.value("type", "") != "Unigram")
    fail("{}: model.type is '{}', not Unigram (SentencePiece); a CLIP tokenizer is vocab.json + merges.txt", path,
         model.value("type", "missing"));
  const nlohmann::json& vocab = model.value("vocab", nlohmann::json::array());
  if (!vocab.is_array() || vocab.empty()) fail("{}: model.vocab is not a list of [piece, score]", path);
  const int64_t unk = model.value("unk_id", int64_t(0));

  // The special tokens: <unk> UNKNOWN; <extra_id_N> USER_DEFINED (they are matched in text);
  // the others (<pad>, </s>) CONTROL, as the T5 sentencepiece model has them.
  std::map<int64_t, std::string> special;
  for (const auto& t : j.value("added_tokens", nlohmann::json::array()))
    if (t.value("special", false)) special[t.at("id").get<int64_t>()] = t.at("content").get<std::string>();
  UnigramVocab v;
  v.unk = unk;
  v.eos = v.pad = -1;
  const std::regex extra_id("<extra_id_[0-9]+>");
  for (size_t id = 0; id < vocab.size(); ++id) {
    const auto& entry = vocab[id];
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_number())
      fail("{}: model.vocab[{}] is not [piece, score]", path, id);
    UnigramVocab::Piece piece{entry[0].get<std::string>(), entry[1].get<float>(), UnigramVocab::Type::Normal};
    if (int64_t(id) == unk) piece.type = UnigramVocab::Type::Unknown;
    else if (special.count(int64_t(id)))
      piece.type = std::regex_match(piece.text, extra_id) ? UnigramVocab::Type::UserDefined : UnigramVocab::Type::Control;
    if (piece.text == "</s>") v.eos = int64_t(id);
    if (piece.text == "<pad>") v.pad = int64_t(id);
    v.pieces.push_back(std::move(piece));
  }
  if (v.eos < 0) fail("{}: no </s> piece", path);
  v.byte_fallback = model.value("byte_fallback", false);

  // The precompiled map: the first Precompiled normaliser of the sequence. Metaspace's
  // prepended "▁" is the dummy prefix; Strip + Replace remove extra whitespace.
  const nlohmann::json& norm = j.value("normalizer", nlohmann::json::object());
  const auto find_map = [&](const nlohmann::json& n) {
    if (n.is_object() && n.value("type", "") == "Precompiled")
      v.precompiled_charsmap = base64_decode(n.at("precompiled_charsmap"), path);
  };
  find_map(norm);
  if (norm.is_object() && norm.contains("normalizers"))
    for (const auto& n : norm.at("normalizers")) find_map(n);
  return std::make_unique<SentencePieceTokenizer>(sentencepiece_model_proto(v), path);
}

std::string sentencepiece_model_proto(const UnigramVocab& v) {
  ProtoWriter proto;
  for (const UnigramVocab::Piece& piece : v.pieces) {
    ProtoWriter p;
    p.bytes_field(1, piece.text);
    p.float_field(2, piece.score);
    p.varint_field(3, uint64_t(piece.type));
    proto.bytes_field(1, p.bytes());
  }
  ProtoWriter trainer;
  trainer.varint_field(3, 1);  // model_type UNIGRAM
  trainer.int32_field(4, int64_t(v.pieces.size()));
  trainer.varint_field(35, v.byte_fallback ? 1 : 0);
  trainer.int32_field(40, v.unk);
  trainer.int32_field(41, -1);  // no BOS
  trainer.int32_field(42, v.eos);
  trainer.int32_field(43, v.pad);
  proto.bytes_field(2, trainer.bytes());
  ProtoWriter normalizer;
  normalizer.bytes_field(1, v.precompiled_charsmap.empty() ? "identity" : "nmt_nfkc");
  if (!v.precompiled_charsmap.empty()) normalizer.bytes_field(2, v.precompiled_charsmap);
  normalizer.varint_field(3, 1);  // add_dummy_prefix
  normalizer.varint_field(4, 1);  // remove_extra_whitespaces
  normalizer.varint_field(5, 1);  // escape_whitespaces
  proto.bytes_field(3, normalizer.bytes());
  return proto.bytes();
}

}  // namespace ditrun::models::text
