#include "runtime/exec/stage_weights.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>

#include "runtime/core/error.h"

namespace ditrun::runtime {

StageWeights::StageWeights(Backend& backend, const Model& model, WeightStore::FindSource find_source,
                           partition::RankPlan rank, uint64_t host_budget_bytes, partition::ExpertStrategy strategy)
    : backend_(backend),
      model_(model),
      find_(std::move(find_source)),
      rank_(std::move(rank)),
      host_budget_(host_budget_bytes),
      swap_(strategy == partition::ExpertStrategy::swap) {
  if (strategy != partition::ExpertStrategy::both && !is_expert_pair(model_))
    fail("plan rank {}: the plan runs two experts ({}), but the model has one", rank_.rank, partition::to_string(strategy));
  if (strategy == partition::ExpertStrategy::phases) {
    phase_ = expert_from_name(rank_.expert);
    if (!phase_) fail("plan rank {}: expert '{}' is not high_noise or low_noise", rank_.rank, rank_.expert);
    load(*phase_);
  } else if (swap_) {
    load(Expert::high_noise);  // every job starts with the high-noise expert
  } else {
    store_ = std::make_unique<WeightStore>(backend_, model_, find_, rank_, host_budget_);
  }
}

void StageWeights::load(Expert expert) {
  const auto start = std::chrono::steady_clock::now();
  if (store_) {
    // The device may still be reading the loaded expert's weights.
    backend_.synchronize(backend_.compute_stream());
    store_.reset();
  }
  // This expert's weights only; the plan sized each unit for the larger expert.
  WeightStore::FindSource only = [find = find_, expert](const std::string& name) -> const Weight* {
    const auto split = split_expert_weight_name(name);
    return split && split->expert != expert ? nullptr : find(name);
  };
  partition::RankPlan share = rank_;
  std::map<std::string, uint64_t, std::less<>> stored;
  for (const UnitWeights& unit : model_units(model_))
    for (const std::string& name : unit.weights)
      if (const Weight* w = only(name)) stored[unit.name] += w->stored_bytes();
  for (partition::PlacedBlock& block : share.blocks) {
    const uint64_t bytes = stored[block.name];
    if (bytes > block.bytes)
      fail("plan rank {}: block '{}' of the {} expert has {} bytes, the plan allows {} (was the plan made for other "
           "weights?)",
           rank_.rank, block.name, expert_name(expert), bytes, block.bytes);
    block.bytes = bytes;
  }
  store_ = std::make_unique<WeightStore>(backend_, model_, only, share, host_budget_);
  current_ = expert;
  spdlog::info("{}: the {} expert's weights loaded ({:.2f} s)", backend_.name(), expert_name(expert),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

WeightStore& StageWeights::for_call(std::optional<Expert> expert) {
  if (phase_ && expert && *expert != *phase_)
    fail("this rank runs the {} expert only, but a step needs the {} one", expert_name(*phase_), expert_name(*expert));
  // A load that failed (the job that needed it failed with it) left no store: try again.
  if ((swap_ || phase_) && (!store_ || (expert && *expert != current_))) load(expert.value_or(current_));
  return *store_;
}

}  // namespace ditrun::runtime
