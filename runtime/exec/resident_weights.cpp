#include "runtime/exec/resident_weights.h"

namespace ditrun::runtime {

uint64_t ResidentWeights::stored_bytes() const {
  uint64_t total = 0;
  for (const auto& [name, w] : weights_) total += w.source->stored_bytes();
  return total;
}

std::vector<std::string> all_weight_names(const Model& model) {
  std::vector<std::string> names = model.prologue_weight_names();
  for (const auto& block : model.blocks())
    for (auto& n : block->weight_names()) names.push_back(std::move(n));
  for (auto& n : model.epilogue_weight_names()) names.push_back(std::move(n));
  return names;
}

}  // namespace ditrun::runtime
