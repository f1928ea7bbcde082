#include "runtime/exec/model.h"

#include "runtime/core/error.h"

namespace ditrun::runtime {

const Tensor& ActivationState::at(std::string_view name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail("activation state has no tensor '{}'", name);
  return it->second;
}

int64_t ActivationState::integer(std::string_view name) const {
  auto it = ints_.find(name);
  if (it == ints_.end()) fail("activation state has no value '{}'", name);
  return it->second;
}

namespace {
constexpr std::string_view kPrefixRows = "prefix_rows";
std::string prefix_key_name(size_t item) { return "prefix_keys." + std::to_string(item); }
}  // namespace

void ActivationState::set_prefix_mask(int64_t rows, std::span<const int64_t> keys) {
  clear_prefix_mask();
  bool padded = false;
  for (int64_t k : keys) {
    if (k < 0 || k > rows) fail("text mask: {} real rows of a {}-row prefix", k, rows);
    padded = padded || k < rows;
  }
  if (!padded) return;
  ints_[std::string(kPrefixRows)] = rows;
  for (size_t b = 0; b < keys.size(); ++b) ints_[prefix_key_name(b)] = keys[b];
}

void ActivationState::clear_prefix_mask() {
  ints_.erase(std::string(kPrefixRows));
  for (auto it = ints_.begin(); it != ints_.end();) it = it->first.starts_with("prefix_keys.") ? ints_.erase(it) : std::next(it);
}

std::vector<int64_t> ActivationState::prefix_keys() const {
  std::vector<int64_t> keys;
  if (!ints_.contains(kPrefixRows)) return keys;
  for (size_t b = 0;; ++b) {
    const auto it = ints_.find(prefix_key_name(b));
    if (it == ints_.end()) break;
    keys.push_back(it->second);
  }
  return keys;
}

int64_t ActivationState::prefix_mask_rows() const {
  const auto it = ints_.find(kPrefixRows);
  return it == ints_.end() ? 0 : it->second;
}

const DeviceWeight& WeightLookup::at(std::string_view name) const {
  const DeviceWeight* w = find(name);
  if (!w) fail("model weight '{}' is missing", name);
  return *w;
}

}  // namespace ditrun::runtime
