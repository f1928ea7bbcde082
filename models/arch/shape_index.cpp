// Shape lookups for the detectors (see shape_index.h).
#include "models/arch/shape_index.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "runtime/core/error.h"

namespace ditrun::arch::detail {

ShapeIndex::ShapeIndex(const std::vector<NamedShape>& tensors, std::string source, std::string_view family_label)
    : source_(std::move(source)), family_(family_label) {
  for (const auto& t : tensors) {
    by_name_.emplace(t.name, t.shape);
    names_.push_back(t.name);
  }
}

void ShapeIndex::fail_detect(const std::string& what) const {
  fail("{}: cannot detect the architecture: {} {}", source_, family_, what);
}

const formats::Shape& ShapeIndex::shape(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) fail_detect(fmt::format("checkpoint lacks tensor '{}'", name));
  return it->second;
}

int64_t ShapeIndex::inner(std::string_view name, size_t k) const {
  const auto& s = shape(name);
  if (s.size() <= k)
    fail_detect(fmt::format("tensor '{}' has shape {}, expected at least {} dims", name, formats::shape_string(s), k + 1));
  return s[s.size() - 1 - k];
}

int64_t ShapeIndex::numel(std::string_view name) const { return formats::element_count(shape(name)); }

std::optional<int64_t> block_index(std::string_view name, std::string_view prefix) {
  if (!name.starts_with(prefix)) return std::nullopt;
  std::string_view rest = name.substr(prefix.size());
  size_t dot = rest.find('.');
  if (dot == 0 || dot == std::string_view::npos) return std::nullopt;
  int64_t idx = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + dot, idx);
  if (ec != std::errc() || ptr != rest.data() + dot || idx < 0) return std::nullopt;
  return idx;
}

int64_t ShapeIndex::count_blocks(std::string_view prefix) const {
  std::set<int64_t> seen;
  for (const auto& n : names_)
    if (auto i = block_index(n, prefix)) seen.insert(*i);
  if (seen.empty()) return 0;
  int64_t n = *seen.rbegin() + 1;
  if (static_cast<int64_t>(seen.size()) != n) {
    int64_t missing = 0;
    while (seen.count(missing)) ++missing;
    fail_detect(fmt::format("blocks '{}N' are not numbered 0..{}: block {} is missing", prefix, n - 1, missing));
  }
  return n;
}

std::vector<int64_t> ShapeIndex::blocks_with(std::string_view prefix, std::string_view suffix, int64_t count) const {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < count; ++i)
    if (has(fmt::format("{}{}{}", prefix, i, suffix))) out.push_back(i);
  return out;
}

std::vector<int64_t> guess_rope_axes(int64_t head_dim) {
  int64_t first = std::max<int64_t>(2, ((head_dim / 8) + 1) / 2 * 2);
  if (first >= head_dim) return {head_dim};
  int64_t rest_pairs = (head_dim - first) / 2;
  int64_t a = (rest_pairs - rest_pairs / 2) * 2, b = (rest_pairs / 2) * 2;
  if (b == 0) return {first, a};
  return {first, a, b};
}

}  // namespace ditrun::arch::detail
