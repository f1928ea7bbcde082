#include <filesystem>
#include <fstream>
#include <iterator>

#include "models/formats/checkpoint.h"
#include "models/text/gguf_tokenizer.h"
#include "models/text/tokenizer.h"
#include "runtime/core/error.h"

namespace ditrun::models::text {

std::vector<int64_t> fit_ids(const std::vector<int64_t>& ids, int64_t length, int64_t end, int64_t pad, bool* truncated) {
  std::vector<int64_t> out = ids;
  if (truncated) *truncated = int64_t(out.size()) > length;
  if (int64_t(out.size()) > length) {
    out.resize(size_t(length));
    out.back() = end;
  }
  out.resize(size_t(length), pad);
  return out;
}

std::unique_ptr<Tokenizer> embedded_tokenizer(const formats::Checkpoint& checkpoint) {
  const std::string& path = checkpoint.path();
  if (const formats::TensorRecord* t = checkpoint.find("spiece_model"))
    return sentencepiece_from_model(checkpoint.data(*t), path + " (spiece_model)");
  if (checkpoint.gguf())
    if (const auto vocab = unigram_vocab_from_gguf(*checkpoint.gguf(), path)) {
      const std::string proto = sentencepiece_model_proto(*vocab);
      return sentencepiece_from_model({reinterpret_cast<const uint8_t*>(proto.data()), proto.size()},
                                      path + " (tokenizer.ggml.*)");
    }
  return nullptr;
}

std::unique_ptr<Tokenizer> open_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"))
      return clip_tokenizer((dir / "vocab.json").string(), (dir / "merges.txt").string());
    if (fs::exists(dir / "tokenizer.json")) return sentencepiece_from_tokenizer_json((dir / "tokenizer.json").string());
    for (const char* name : {"spiece.model", "tokenizer.model", "spm.model"})
      if (fs::exists(dir / name)) return open_tokenizer((dir / name).string());
    fail("{}: no vocab.json + merges.txt, tokenizer.json or SentencePiece .model in the folder", path);
  }
  if (!fs::exists(path, ec)) fail("{}: no such file or folder", path);
  if (path.ends_with(".json")) return sentencepiece_from_tokenizer_json(path);
  if (path.ends_with(".safetensors") || path.ends_with(".gguf")) {
    if (auto embedded = embedded_tokenizer(formats::Checkpoint(path))) return embedded;
    fail("{}: the checkpoint embeds no tokenizer (no spiece_model tensor, no tokenizer.ggml.* metadata)", path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return sentencepiece_from_model(bytes, path);
}

}  // namespace ditrun::models::text
