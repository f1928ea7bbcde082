#include "models/text/text_cleaning.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <map>

#include "runtime/core/error.h"

namespace ditrun::models::text {
namespace {

bool is_space(UChar32 c) { return u_isUWhiteSpace(c) || (c >= 0x1C && c <= 0x1F); }  // Python's str.isspace

std::string utf8(const icu::UnicodeString& s) {
  std::string out;
  s.toUTF8String(out);
  return out;
}

// Python's html.unescape for what prompts carry: numeric references and the common names.
std::string html_unescape(const std::string& s) {
  static const std::map<std::string, std::string> kNamed{
      {"amp", "&"},     {"lt", "<"},      {"gt", ">"},       {"quot", "\""},    {"apos", "'"},
      {"nbsp", "\u00a0"}, {"copy", "\u00a9"}, {"reg", "\u00ae"}, {"trade", "\u2122"}, {"hellip", "\u2026"},
      {"mdash", "\u2014"}, {"ndash", "\u2013"}, {"lsquo", "\u2018"}, {"rsquo", "\u2019"}, {"ldquo", "\u201c"},
      {"rdquo", "\u201d"}, {"deg", "\u00b0"}, {"times", "\u00d7"}};
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t semi = s[i] == '&' ? s.find(';', i) : std::string::npos;
    if (semi != std::string::npos && semi - i <= 10) {
      const std::string name = s.substr(i + 1, semi - i - 1);
      if (name.size() > 1 && name[0] == '#') {
        const bool hex = name[1] == 'x' || name[1] == 'X';
        const std::string digits = name.substr(hex ? 2 : 1);
        if (!digits.empty() && digits.find_first_not_of(hex ? "0123456789abcdefABCDEF" : "0123456789") == std::string::npos) {
          const UChar32 c = UChar32(std::stoul(digits, nullptr, hex ? 16 : 10));
          out += utf8(icu::UnicodeString(c > 0x10FFFF ? 0xFFFD : c));
          i = semi + 1;
          continue;
        }
      } else if (auto it = kNamed.find(name); it != kNamed.end()) {
        out += it->second;
        i = semi + 1;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

}  // namespace

std::string clean_prompt(const std::string& text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  icu::UnicodeString s = nfc->normalize(icu::UnicodeString::fromUTF8(text), status);
  if (U_FAILURE(status)) fail("text cannot be normalised: {}", u_errorName(status));
  s = icu::UnicodeString::fromUTF8(html_unescape(html_unescape(utf8(s))));
  // Whitespace runs to one space, trimmed.
  icu::UnicodeString collapsed;
  bool pending_space = false;
  for (int32_t i = 0; i < s.length(); i = s.moveIndex32(i, 1)) {
    const UChar32 c = s.char32At(i);
    if (is_space(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space && !collapsed.isEmpty()) collapsed.append(UChar32(' '));
    pending_space = false;
    collapsed.append(c);
  }
  return utf8(collapsed);
}

}  // namespace ditrun::models::text
