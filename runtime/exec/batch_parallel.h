// CFG parallelism: the ranks of a group take one batch item each of a guided step, the cond
// and the uncond halves of a Wan call, and meet again before the epilogue, where the
// guidance sum is taken. Each half is computed as a batch of one: the same sums as the
// one-rank batch of two except where a kernel blocks its work by the row count (the CPU GEMM
// does), so the result agrees with one rank within 1e-5 rather than bit for bit.
#pragma once

#include <vector>

#include "runtime/exec/model.h"
#include "transport/rank_group.h"

namespace ditrun::runtime {

class BatchParallel {
 public:
  explicit BatchParallel(transport::RankGroup& group) : group_(group) {}
  int degree() const { return group_.size(); }
  int index() const { return group_.index(); }

  // Member c keeps batch item c of the layout's batch tensors (the whole state arrives on
  // every member). Fails unless the batch has one item per member.
  void split(Backend& backend, const StateLayout& layout, ActivationState& state);
  // The items back on member 0 in order (true there, with the whole state); the other
  // members return false and their state is left empty.
  bool gather(Backend& backend, const StateLayout& layout, ActivationState& state);

 private:
  transport::RankGroup& group_;
  int64_t batch_ = 0;
  std::vector<int64_t> prefix_keys_;  // the split state's text mask, whole (empty: none)
  int64_t prefix_rows_ = 0;
};

}  // namespace ditrun::runtime
