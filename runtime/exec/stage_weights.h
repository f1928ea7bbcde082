// A rank's weights for its share of a plan. Usually one WeightStore holding every unit the
// plan gives the rank (a model of two experts: both experts' weights of each unit). Under a
// plan that swaps experts (partition::ExpertStrategy::swap) the rank holds one expert's
// weights at a time: a call of the other expert first releases them (after the device has
// finished with them) and places the other's in the same budget, from the checkpoints.
// Under experts in phases it holds its group's expert only, for good.
#pragma once

#include <memory>
#include <optional>

#include "partition/plan.h"
#include "runtime/exec/expert_pair.h"
#include "runtime/exec/weight_store.h"

namespace ditrun::runtime {

class StageWeights {
 public:
  StageWeights(Backend& backend, const Model& model, WeightStore::FindSource find_source, partition::RankPlan rank,
               uint64_t host_budget_bytes, partition::ExpertStrategy strategy = partition::ExpertStrategy::both);

  // The store a call of `expert` reads (nullopt: a one-expert model's call, or not known);
  // when swapping, loads that expert first if another one is in place.
  WeightStore& for_call(std::optional<Expert> expert);
  WeightStore& loaded() { return for_call(std::nullopt); }
  bool swaps_experts() const { return swap_; }
  // Experts in phases: the one expert this rank's group runs.
  std::optional<Expert> phase() const { return phase_; }

 private:
  void load(Expert expert);

  Backend& backend_;
  const Model& model_;
  WeightStore::FindSource find_;
  partition::RankPlan rank_;
  uint64_t host_budget_;
  bool swap_;
  std::optional<Expert> phase_;
  Expert current_ = Expert::high_noise;
  std::unique_ptr<WeightStore> store_;
};

}  // namespace ditrun::runtime
