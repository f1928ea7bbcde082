// Which blocks of a contiguous range stay resident on one device, for every range at once.
//
// A stage [i, j) on a device with `capacity` bytes (its budget minus activations) keeps some
// blocks resident and streams the rest through `slots` device slots, each as large as the
// largest streamed block m:  resident + slots * m <= capacity.
// Under the cost model, streaming fewer bytes never makes a stage slower nor uses more pinned
// host RAM, so the best residency maximizes resident bytes. For each candidate m (every
// distinct block size, and 0 = stream nothing) blocks above m are forced resident and the
// rest is a subset-sum problem (maximize resident bytes under capacity - slots*m - forced).
//
// The subset sums are kept as the exact sorted list of reachable totals while it has at most
// kExactSums entries: always so for real DiTs (a handful of distinct block sizes) and for up
// to 12 blocks. Beyond that the list is trimmed (a total is dropped when a kept total lies
// within g = capacity / kExactSums below it), which costs at most g resident bytes per block
// of the stage: streamed bytes exceed the optimum by at most (blocks in stage) * g, i.e. by
// (blocks in stage) / 4096 of the capacity. exact() says whether that ever happened.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ditrun::partition {

inline constexpr size_t kExactSums = 4096;

struct RangeFit {
  bool feasible = false;
  uint64_t streamed_bytes = 0;  // minimal bytes streamed from pinned host RAM
  uint64_t slot_bytes = 0;      // the m that achieves it (0 when nothing streams)
};

class StageFits {
 public:
  // weights: bytes of every block in order. A capacity of 0 makes every range infeasible.
  StageFits(std::vector<uint64_t> weights, uint64_t capacity, int slots);

  // The range [first, last) (last exclusive, first < last).
  const RangeFit& at(size_t first, size_t last) const { return fits_[first * (n_ + 1) + last]; }
  bool exact() const { return exact_; }

  // The residency behind at(first, last): true = streamed, one entry per block of the range.
  // Among blocks of equal size, the streamed ones are spread evenly over the range so that
  // each copy has compute of resident blocks to hide behind.
  std::vector<bool> streamed_blocks(size_t first, size_t last) const;

 private:
  std::vector<uint64_t> weights_;
  size_t n_;
  uint64_t capacity_;
  int slots_;
  bool exact_ = true;
  std::vector<RangeFit> fits_;
};

}  // namespace ditrun::partition
