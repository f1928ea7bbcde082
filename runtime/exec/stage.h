// A stage: a contiguous run of a model's units on one rank. A pipeline rank runs its stage
// on the activation state the previous rank sent; the first stage starts from the network's
// inputs, the last ends with the output. The single-rank call (model_call.h) is the stage that
// holds every unit, so all layouts share this one loop and compute the same bits.
//
// A stage may also be shared by several ranks working on one job (JobSplit): each member
// runs the same stage on the whole state or inputs, the state is split after the prologue
// (or on arrival), every block runs on the member's share, and the shares meet on the first
// member after the stage's last block. CFG splits first (one batch item per CFG member), then
// the tokens (over the sequence-parallel members of the same item).
#pragma once

#include <cstddef>
#include <optional>

#include "runtime/exec/batch_parallel.h"
#include "runtime/exec/model_call.h"
#include "runtime/exec/sequence_parallel.h"
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
  bool shared = true;              // false on the members of a JobSplit other than the first: nothing to pass on
};

// The ranks that share a stage's work on one job; null: not split that way.
struct JobSplit {
  BatchParallel* batch = nullptr;        // CFG: one batch item per member
  SequenceParallel* sequence = nullptr;  // tokens, among the members holding the same item
  bool active() const { return batch || sequence; }
};

// Runs `range`: from `inputs` when it starts with the prologue, else from `state`. After a
// failure the store's streaming cycle restarts, ready for the next call.
StageOutput run_stage(Backend& backend, const Model& model, WeightStore& weights, UnitRange range,
                      const HostTensors* inputs, ActivationState state, const BlockObserver& observer = {},
                      const JobSplit& split = {});

}  // namespace ditrun::runtime
