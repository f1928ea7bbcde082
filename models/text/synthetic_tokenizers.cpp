#include "models/text/synthetic_tokenizers.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "runtime/core/atomic_file.h"
#include "runtime/core/error.h"

namespace ditrun::models::text {
namespace {

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

// Letter strings in order of length, then alphabetically: a, b, ..., z, aa, ab, ...
class LetterStrings {
 public:
  std::string next() {
    std::string s;
    for (int64_t n = index_++, len = 1;; ++len) {
      int64_t count = 1;
      for (int64_t i = 0; i < len; ++i) count *= 26;
      if (n < count) {
        for (int64_t i = 0; i < len; ++i, n /= 26) s.insert(s.begin(), char('a' + n % 26));
        return s;
      }
      n -= count;
    }
  }

 private:
  int64_t index_ = 0;
};

void write_text(const std::filesystem::path& path, const std::string& text) {
  AtomicFile file(path.string());
  file.write(text.data(), text.size());
  file.commit();
}

}  // namespace

UnigramVocab synthetic_unigram_vocab(int64_t size) {
  if (size < 300) fail("a synthetic SentencePiece vocabulary needs at least 300 pieces, got {}", size);
  UnigramVocab v;
  v.pad = 0;
  v.eos = 1;
  v.unk = 2;
  v.byte_fallback = true;
  using T = UnigramVocab::Type;
  v.pieces = {{"<pad>", 0, T::Control}, {"</s>", 0, T::Control}, {"<unk>", 0, T::Unknown}};
  for (int b = 0; b < 256; ++b) v.pieces.push_back({fmt::format("<0x{:02X}>", b), 0, T::Byte});
  v.pieces.push_back({"\xE2\x96\x81", -2.0f, T::Normal});  // "▁", the word boundary
  // Words with and without the boundary; longer strings score a little better per piece, so
  // text splits into few pieces, as with a trained vocabulary.
  LetterStrings strings;
  while (int64_t(v.pieces.size()) < size) {
    const std::string s = strings.next();
    const float score = -3.0f - 0.1f * float(s.size());
    v.pieces.push_back({"\xE2\x96\x81" + s, score, T::Normal});
    if (int64_t(v.pieces.size()) < size) v.pieces.push_back({s, score - 0.5f, T::Normal});
  }
  return v;
}

void write_synthetic_clip_tokenizer(const std::string& dir, int64_t size) {
  if (size < 520) fail("a synthetic CLIP vocabulary needs at least 520 tokens, got {}", size);
  // GPT-2's byte table: printable bytes stand for themselves, the others for 256 + n.
  std::vector<std::string> symbols;
  std::vector<int> others;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable) symbols.push_back(utf8(uint32_t(b)));
    else others.push_back(b);
  }
  for (size_t n = 0; n < others.size(); ++n) symbols.push_back(utf8(uint32_t(256 + n)));
  nlohmann::ordered_json vocab;
  int64_t id = 0;
  for (const std::string& s : symbols) vocab[s] = id++;
  for (const std::string& s : symbols) vocab[s + "</w>"] = id++;
  // Merges that build letter strings left to right, each as a word end too: "a b", "a b</w>",
  // then "ab c", ... (every merged symbol is made of symbols already in the table).
  std::string merges = "#version: 0.2\n";
  LetterStrings strings;
  while (id < size - 2) {
    const std::string s = strings.next();
    if (s.size() < 2) continue;
    const std::string head = s.substr(0, s.size() - 1), tail = s.substr(s.size() - 1);
    for (const char* end : {"", "</w>"}) {
      if (id >= size - 2) break;
      if (vocab.contains(s + end)) continue;
      merges += head + " " + tail + end + "\n";
      vocab[s + end] = id++;
    }
  }
  vocab["<|startoftext|>"] = id++;
  vocab["<|endoftext|>"] = id++;
  std::filesystem::create_directories(dir);
  write_text(std::filesystem::path(dir) / "vocab.json", vocab.dump());
  write_text(std::filesystem::path(dir) / "merges.txt", merges);
}

}  // namespace ditrun::models::text
