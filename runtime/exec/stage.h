// A stage: a contiguous run of a model's units on one rank. A pipeline rank runs its stage
// on the activation state the previous rank sent; the first stage starts from the network's
// inputs, the last ends with the output. The single-rank call (executor.h) is the stage that
// holds every unit, so all layouts share this one loop and compute the same bits.
#pragma once

#include <cstddef>
#include <optional>

#include "runtime/exec/model_call.h"
#include "runtime/exec/weight_store.h"

namespace ditrun::runtime {

// Units [first, end) in model_units() order: 0 is the prologue, 1..n the blocks, n + 1 the
// epilogue.
struct UnitRange {
  size_t first = 0;
  size_t end = 0;
  bool has_prologue() const { return first == 0; }
  bool has_epilogue(const Model& model) const { return end == model.blocks().size() + 2; }
};

// The units a WeightStore holds, which must be contiguous and non-empty (fails otherwise).
UnitRange held_units(const Model& model, const WeightStore& weights);

struct StageOutput {
  ActivationState state;           // after the stage's last block (when it has no epilogue)
  std::optional<HostTensor> output;  // the model output (when it has the epilogue)
};

// Runs `range`: from `inputs` when it starts with the prologue, else from `state`. After a
// failure the store's streaming cycle restarts, ready for the next call.
StageOutput run_stage(Backend& backend, const Model& model, WeightStore& weights, UnitRange range,
                      const HostTensors* inputs, ActivationState state, const BlockObserver& observer = {});

}  // namespace ditrun::runtime
