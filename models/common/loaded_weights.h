// The weights of a model built from Backend calls outside the DiT's WeightStore (VAEs, text
// encoders): loaded to the backend by name on first use and kept for the model's life, with
// one-line errors naming the file and tensor. Embedding tables are read on the host, a row per
// token, so they stay in their storage type.
#pragma once

#include <map>
#include <span>
#include <string>
#include <vector>

#include "models/quant/weight_set.h"
#include "runtime/backend/backend.h"

namespace ditrun::models {

class LoadedWeights {
 public:
  // `what` names the model in errors ("VAE", "T5", "CLIP").
  LoadedWeights(runtime::Backend& backend, const quant::WeightSet& weights, std::string source, std::string what)
      : backend_(backend), weights_(weights), source_(std::move(source)), what_(std::move(what)) {}

  const std::string& source() const { return source_; }
  const Weight* find(const std::string& name) const { return weights_.find(name); }
  bool has(const std::string& name) const { return find(name) != nullptr; }
  // The weight on the backend; fails when it is missing or its element count is not
  // `expected_numel` (0: unchecked).
  const runtime::DeviceWeight& get(const std::string& name, int64_t expected_numel = 0);
  // Rows `ids` (token ids as values) of the embedding table `name` [vocab, C]: ids.size() × C
  // values; fails naming an id outside the table.
  std::vector<float> embedding_rows(const std::string& name, std::span<const float> ids) const;
  // Starts loading `names` (those present and not loaded yet) on `copy`, a stream of the
  // backend: get() of one of them makes the compute stream wait for its copy, so a streamed
  // model's next layer arrives while this one computes.
  void prefetch(const std::vector<std::string>& names, runtime::Stream copy);
  // Drops the backend's copies of the weights whose names start with `prefix`, once the work
  // queued on the compute stream is done: a model streamed a layer at a time holds one (two
  // while the next one arrives).
  void release(const std::string& prefix);
  uint64_t loaded_bytes() const;

 private:
  const Weight& at(const std::string& name) const;

  runtime::Backend& backend_;
  const quant::WeightSet& weights_;
  std::string source_, what_;
  std::map<std::string, runtime::DeviceWeight> loaded_;
  std::map<std::string, runtime::Event> arriving_;  // prefetched weights whose copy was not waited for
};

}  // namespace ditrun::models
