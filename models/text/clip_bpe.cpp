// CLIP's tokenizer as openai's simple_tokenizer computes it: the text cleaned (clean_prompt,
// then full Unicode lower-casing), cut into pieces (the two special-token strings, the English
// contractions, runs of letters, single digits, runs of other non-space characters), each
// piece's UTF-8 bytes mapped through GPT-2's byte→character table with `</w>` on the last
// symbol, and merges applied lowest rank first.
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "models/text/text_cleaning.h"
#include "models/text/tokenizer.h"
#include "runtime/core/error.h"

namespace ditrun::models::text {
namespace {

constexpr int64_t kStart = 49406, kEnd = 49407;  // overwritten from the vocabulary when present

bool is_space(UChar32 c) { return u_isUWhiteSpace(c) || (c >= 0x1C && c <= 0x1F); }  // Python's str.isspace
bool is_letter(UChar32 c) { return (U_GET_GC_MASK(c) & U_GC_L_MASK) != 0; }
bool is_number(UChar32 c) { return (U_GET_GC_MASK(c) & U_GC_N_MASK) != 0; }

std::string utf8(const icu::UnicodeString& s) {
  std::string out;
  s.toUTF8String(out);
  return out;
}

class ClipTokenizer final : public Tokenizer {
 public:
  ClipTokenizer(const std::string& vocab_path, const std::string& merges_path) : source_(vocab_path) {
    std::ifstream vin(vocab_path);
    if (!vin) fail("{}: cannot open", vocab_path);
    const nlohmann::json vocab = nlohmann::json::parse(vin, nullptr, false);
    if (vocab.is_discarded() || !vocab.is_object()) fail("{}: not a JSON object of token → id", vocab_path);
    for (const auto& [token, id] : vocab.items()) {
      if (!id.is_number_integer()) fail("{}: the id of '{}' is not an integer", vocab_path, token);
      vocab_.emplace(token, id.get<int64_t>());
    }
    start_ = id_or("<|startoftext|>", kStart);
    end_ = id_or("<|endoftext|>", kEnd);
    std::ifstream min(merges_path);
    if (!min) fail("{}: cannot open", merges_path);
    std::string line;
    int64_t rank = 0;
    for (int64_t n = 0; std::getline(min, line); ++n) {
      if (n == 0 && line.starts_with("#version")) continue;
      if (line.empty()) continue;
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
        fail("{}:{}: a merge is two symbols separated by one space", merges_path, n + 1);
      ranks_.emplace(line, rank++);
    }
    if (ranks_.empty()) fail("{}: no merges", merges_path);
    // GPT-2's table: printable bytes stand for themselves, the others for 256 + n.
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_char_[size_t(b)] = utf8(icu::UnicodeString(UChar32(printable ? b : 256 + n++)));
    }
  }

  std::string describe() const override {
    return fmt::format("clip-bpe ({} tokens, {} merges) from {}", vocab_.size(), ranks_.size(), source_);
  }

  std::vector<int64_t> encode(const std::string& text) const override {
    std::vector<int64_t> ids{start_};
    for (const std::string& piece : pieces(clean(text))) {
      for (const std::string& token : bpe(piece)) {
        const auto it = vocab_.find(token);
        if (it == vocab_.end()) fail("{}: token '{}' of the merges is not in the vocabulary", source_, token);
        ids.push_back(it->second);
      }
    }
    ids.push_back(end_);
    return ids;
  }

  std::vector<int64_t> fit(const std::vector<int64_t>& ids, int64_t length, bool* truncated) const override {
    return fit_ids(ids, length, end_, pad_id(), truncated);
  }
  int64_t pad_id() const override { return end_; }  // CLIP pads with end-of-text

 private:
  int64_t id_or(const std::string& token, int64_t fallback) const {
    const auto it = vocab_.find(token);
    return it == vocab_.end() ? fallback : it->second;
  }

  static icu::UnicodeString clean(const std::string& text) {
    return icu::UnicodeString::fromUTF8(clean_prompt(text)).toLower(icu::Locale::getRoot());
  }

  // openai's pattern: <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+
  static std::vector<std::string> pieces(const icu::UnicodeString& s) {
    static const icu::UnicodeString kSpecial[] = {icu::UnicodeString::fromUTF8("<|startoftext|>"),
                                                  icu::UnicodeString::fromUTF8("<|endoftext|>")};
    static const char* kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    std::vector<std::string> out;
    for (int32_t i = 0; i < s.length();) {
      const UChar32 c = s.char32At(i);
      int32_t end = -1;
      for (const auto& special : kSpecial)
        if (end < 0 && s.compare(i, special.length(), special) == 0) end = i + special.length();
      for (const char* k : kContractions) {
        const icu::UnicodeString kk = icu::UnicodeString::fromUTF8(k);
        if (end < 0 && s.compare(i, kk.length(), kk) == 0) end = i + kk.length();
      }
      if (end < 0 && is_letter(c)) {
        end = i;
        while (end < s.length() && is_letter(s.char32At(end))) end = s.moveIndex32(end, 1);
      } else if (end < 0 && is_number(c)) {
        end = s.moveIndex32(i, 1);
      } else if (end < 0 && !is_space(c)) {
        end = i;
        while (end < s.length()) {
          const UChar32 d = s.char32At(end);
          if (is_space(d) || is_letter(d) || is_number(d)) break;
          end = s.moveIndex32(end, 1);
        }
      }
      if (end < 0) {
        i = s.moveIndex32(i, 1);  // whitespace separates pieces
        continue;
      }
      out.push_back(utf8(icu::UnicodeString(s, i, end - i)));
      i = end;
    }
    return out;
  }

  std::vector<std::string> bpe(const std::string& piece) const {
    {
      std::lock_guard lock(cache_mutex_);
      if (auto it = cache_.find(piece); it != cache_.end()) return it->second;
    }
    std::vector<std::string> word;
    for (unsigned char b : piece) word.push_back(byte_char_[b]);
    if (word.empty()) return {};
    word.back() += "</w>";
    while (word.size() > 1) {
      int64_t best = INT64_MAX;
      size_t at = 0;
      for (size_t k = 0; k + 1 < word.size(); ++k) {
        const auto it = ranks_.find(word[k] + " " + word[k + 1]);
        if (it != ranks_.end() && it->second < best) best = it->second, at = k;
      }
      if (best == INT64_MAX) break;
      // Merge every occurrence of the best pair, left to right.
      const std::string first = word[at], second = word[at + 1];
      std::vector<std::string> merged;
      for (size_t k = 0; k < word.size();) {
        if (k + 1 < word.size() && word[k] == first && word[k + 1] == second) {
          merged.push_back(first + second);
          k += 2;
        } else {
          merged.push_back(word[k++]);
        }
      }
      word = std::move(merged);
    }
    std::lock_guard lock(cache_mutex_);
    cache_.emplace(piece, word);
    return word;
  }

  std::string source_;
  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<std::string, int64_t> ranks_;
  std::array<std::string, 256> byte_char_;
  int64_t start_ = kStart, end_ = kEnd;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::string>> cache_;
};

}  // namespace

std::unique_ptr<Tokenizer> clip_tokenizer(const std::string& vocab_json, const std::string& merges_txt) {
  return std::make_unique<ClipTokenizer>(vocab_json, merges_txt);
}

}  // namespace ditrun::models::text
