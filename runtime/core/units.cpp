#include "runtime/core/units.h"

#include <charconv>
#include <utility>
#include <cmath>
#include <cctype>

#include "runtime/core/error.h"

namespace ditrun {

std::string normalize_token(std::string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  std::string out(text.substr(begin, end - begin));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

namespace {

std::optional<uint64_t> unit_multiplier(std::string_view unit) {
  if (unit.empty() || unit == "b") return 1;
  // "k", "kb" and "kib" are the same binary unit (see units.h for why).
  static constexpr std::string_view prefixes = "kmgt";
  const size_t at = prefixes.find(unit[0]);
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view rest = unit.substr(1);
  if (!(rest.empty() || rest == "b" || rest == "ib")) return std::nullopt;
  return uint64_t{1} << (10 * (at + 1));
}

}  // namespace

std::optional<uint64_t> try_parse_bytes(std::string_view text) {
  const std::string s = normalize_token(text);
  size_t digits_end = 0;
  int dots = 0, digits = 0;
  while (digits_end < s.size() && (std::isdigit(static_cast<unsigned char>(s[digits_end])) || s[digits_end] == '.')) {
    (s[digits_end] == '.' ? dots : digits) += 1;
    ++digits_end;
  }
  if (digits == 0 || dots > 1) return std::nullopt;
  size_t unit_begin = digits_end;
  while (unit_begin < s.size() && s[unit_begin] == ' ') ++unit_begin;
  const auto multiplier = unit_multiplier(std::string_view(s).substr(unit_begin));
  if (!multiplier) return std::nullopt;
  const bool has_unit = unit_begin < s.size();
  if (!has_unit || *multiplier == 1) {
    // Plain bytes must be a whole number: "1.5" bytes is a typo for 1.5gb, not a size.
    if (dots != 0) return std::nullopt;
    uint64_t value = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + digits_end, value);
    if (ec != std::errc() || ptr != s.data() + digits_end) return std::nullopt;
    return value;
  }
  double value = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + digits_end, value);
  if (ec != std::errc() || ptr != s.data() + digits_end) return std::nullopt;
  const double bytes = std::round(value * static_cast<double>(*multiplier));
  if (!std::isfinite(bytes) || bytes >= 18446744073709551616.0) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

uint64_t parse_bytes(std::string_view text, std::string_view what) {
  if (auto bytes = try_parse_bytes(text)) return *bytes;
  fail("{} '{}' is not a size (use 512mb, 12gb, 1.5gib or a whole number of bytes; units are binary)",
       what, text);
}

std::string format_bytes(uint64_t bytes) {
  static constexpr const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < KiB) return fmt::format("{} B", bytes);
  int unit = 0;
  double value = static_cast<double>(bytes) / KiB;
  while (unit < 3 && value >= 1024.0) {
    value /= 1024.0;
    ++unit;
  }
  std::string number = fmt::format("{:.1f}", value);
  if (number.ends_with(".0")) number.resize(number.size() - 2);
  return fmt::format("{} {}", number, units[unit]);
}

std::string format_bytes_exact(uint64_t bytes) {
  static constexpr std::pair<uint64_t, const char*> units[] = {{TiB, "tib"}, {GiB, "gib"}, {MiB, "mib"}, {KiB, "kib"}};
  for (const auto& [size, name] : units)
    if (bytes != 0 && bytes % size == 0) return fmt::format("{}{}", bytes / size, name);
  return fmt::format("{}", bytes);
}

std::string format_seconds(double seconds) {
  if (!std::isfinite(seconds)) return "inf s";
  if (seconds < 1e-3) return fmt::format("{:.0f} us", seconds * 1e6);
  if (seconds < 1.0) return fmt::format("{:.3g} ms", seconds * 1e3);
  return fmt::format("{:.3g} s", seconds);
}

std::string format_job_seconds(double seconds) {
  if (seconds < 100) return format_seconds(seconds);
  if (seconds < 2 * 3600) return fmt::format("{:.0f} s ({:.1f} min)", seconds, seconds / 60);
  return fmt::format("{:.0f} s ({:.1f} h)", seconds, seconds / 3600);
}

}  // namespace ditrun
