#include "models/common/loaded_weights.h"

#include "runtime/core/error.h"

namespace ditrun::models {

const Weight& LoadedWeights::at(const std::string& name) const {
  const Weight* w = weights_.find(name);
  if (!w) fail("{}: {} tensor '{}' is missing", source_, what_, name);
  return *w;
}

const runtime::DeviceWeight& LoadedWeights::get(const std::string& name, int64_t expected_numel) {
  if (auto it = arriving_.find(name); it != arriving_.end()) {
    backend_.wait_event(backend_.compute_stream(), it->second);
    arriving_.erase(it);
  }
  if (auto it = loaded_.find(name); it != loaded_.end()) return it->second;
  const Weight& w = at(name);
  if (expected_numel && w.numel() != expected_numel)
    fail("{}: {} tensor '{}' {} has {} values, the config needs {}", source_, what_, name, shape_string(w.shape),
         w.numel(), expected_numel);
  return loaded_.emplace(name, backend_.load_weight(w, backend_.compute_stream())).first->second;
}

std::vector<float> LoadedWeights::embedding_rows(const std::string& name, std::span<const float> ids) const {
  const Weight& table = at(name);
  const int64_t c = table.cols();
  std::vector<float> rows(ids.size() * size_t(c));
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = int64_t(ids[i]);
    if (ids[i] != float(id) || id < 0 || id >= table.rows())
      fail("{}: token id {} is outside the vocabulary of {}", source_, ids[i], table.rows());
    table.dequantize_rows(id, id + 1, std::span<float>(rows).subspan(i * size_t(c), size_t(c)));
  }
  return rows;
}

void LoadedWeights::prefetch(const std::vector<std::string>& names, runtime::Stream copy) {
  std::vector<std::string> started;
  for (const std::string& name : names) {
    const Weight* w = weights_.find(name);
    if (!w || loaded_.count(name)) continue;
    loaded_.emplace(name, backend_.load_weight(*w, copy));
    started.push_back(name);
  }
  if (started.empty()) return;
  const runtime::Event done = backend_.record_event(copy);
  for (const std::string& name : started) arriving_.insert_or_assign(name, done);
}

void LoadedWeights::release(const std::string& prefix) {
  backend_.synchronize(backend_.compute_stream());
  for (auto it = loaded_.lower_bound(prefix); it != loaded_.end() && it->first.starts_with(prefix);) {
    arriving_.erase(it->first);
    it = loaded_.erase(it);
  }
}

uint64_t LoadedWeights::loaded_bytes() const {
  uint64_t bytes = 0;
  for (const auto& [name, w] : loaded_) bytes += w.source->stored_bytes();
  return bytes;
}

}  // namespace ditrun::models
