// One group of GPUs as a pipeline: the pieces solve() combines (internal to partition/).
//
// GPUs with the same budget and rates form a DeviceClass: any one of them can take any stage
// another can, so the solver enumerates sequences of classes rather than of GPUs. For one
// sequence, SequenceSolver finds the split of the blocks into contiguous stages with the
// smallest slowest stage, within a host budget for pinned bytes (see solver.h for the model).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "partition/cost_model.h"
#include "partition/solver.h"
#include "partition/stage_fit.h"

namespace ditrun::partition::detail {

inline constexpr uint64_t kNoFit = std::numeric_limits<uint64_t>::max();
inline constexpr double kInf = std::numeric_limits<double>::infinity();

struct DeviceClass {
  Throughput throughput;
  uint64_t budget = 0;
  bool usable = false;          // the budget covers the step's activations
  std::vector<size_t> members;  // indices into SolverInput::gpus, in order
  std::unique_ptr<StageFits> fits;
  std::vector<double> core;  // [i * (n+1) + j]: max(compute, transfer) of blocks [i, j), or infinity if they do not fit

  // Fills `core` from the blocks' compute seconds on this class.
  void tabulate(const std::vector<double>& compute);
};

// Classes of the GPUs with a budget, with their StageFits (core still empty).
std::vector<DeviceClass> make_classes(const std::vector<uint64_t>& weights, const std::vector<ComputeDevice>& gpus,
                                      uint64_t activation_bytes, int slots);

// Ordered sequences of classes (one class per stage), each class used at most as often as it
// has GPUs, at most max_len long. Beyond kMaxSequences only non-decreasing sequences, and
// `complete` is false.
std::vector<std::vector<int>> class_sequences(const std::vector<DeviceClass>& classes, size_t max_len, bool& complete);

struct GroupSolution {
  bool feasible = false;
  double max_stage = 0;
  double step = 0;
  uint64_t pinned = 0;
  std::vector<size_t> cuts;  // stage s holds blocks [cuts[s], cuts[s+1])
};

class SequenceSolver {
 public:
  SequenceSolver(const ModelCost& model, const std::vector<DeviceClass>& classes, const std::vector<int>& sequence);

  // Stage s over blocks [i, j): its time (core + boundary), or infinity if they do not fit.
  double stage_seconds(size_t s, size_t i, size_t j) const {
    return classes_[seq_[s]].core[i * (n_ + 1) + j] + boundary_[s][j];
  }
  // Stage s ending before block j sends that block's output to the next stage (the last
  // stage to the first, for the next step); a one-stage group sends nothing.
  double boundary_seconds(size_t s, size_t j) const { return boundary_[s][j]; }

  // The smallest possible slowest stage over all splits, ignoring the host budget.
  double min_max_stage() const;
  // Fewest pinned bytes over splits whose every stage takes at most tau (kNoFit if none);
  // with `cuts`, the split that achieves it.
  uint64_t min_pinned(double tau, std::vector<size_t>* cuts) const;
  // The smallest slowest stage with at most host_budget pinned bytes: exact (see solver.h).
  GroupSolution solve(uint64_t host_budget, int micro_batches) const;

 private:
  const std::vector<DeviceClass>& classes_;
  const std::vector<int>& seq_;
  size_t n_, stages_;
  std::vector<std::vector<double>> boundary_;
};

}  // namespace ditrun::partition::detail
