#include "partition/stage_fit.h"

#include <algorithm>
#include <cassert>
#include <map>

namespace ditrun::partition {

namespace {

// Reachable totals of subsets of the items added so far, sorted, never above the limit.
// With tracking on, each total remembers the item that reached it and the total it came from.
class SubsetSums {
 public:
  explicit SubsetSums(bool track) : track_(track) {
    if (track_) nodes_.push_back({-1, -1});
  }

  void add(uint64_t w, int item, uint64_t limit, uint64_t trim_step, bool& trimmed) {
    merged_.clear();
    merged_nodes_.clear();
    size_t a = 0, b = 0;
    const size_t n = sums_.size();
    while (a < n || b < n) {
      const bool b_ok = b < n && sums_[b] + w <= limit;
      if (!b_ok && a == n) break;
      // Equal totals keep the older one, so that tracking and plain sweeps stay identical.
      if (a < n && (!b_ok || sums_[a] <= sums_[b] + w)) {
        if (b_ok && sums_[a] == sums_[b] + w) ++b;
        push(sums_[a], track_ ? node_of_[a] : 0);
        ++a;
      } else {
        int node = 0;
        if (track_) {
          nodes_.push_back({node_of_[b], item});
          node = static_cast<int>(nodes_.size()) - 1;
        }
        push(sums_[b] + w, node);
        ++b;
      }
    }
    if (merged_.size() > kExactSums) {
      trimmed = true;
      trim(trim_step);
    }
    sums_.swap(merged_);
    node_of_.swap(merged_nodes_);
  }

  void prune(uint64_t limit) {
    while (sums_.back() > limit) {  // 0 is never above a limit, so the list stays non-empty
      sums_.pop_back();
      if (track_) node_of_.pop_back();
    }
  }

  uint64_t best() const { return sums_.back(); }

  std::vector<int> best_items() const {
    std::vector<int> items;
    for (int node = node_of_.back(); node > 0; node = nodes_[node].parent) items.push_back(nodes_[node].item);
    return items;
  }

 private:
  struct Node {
    int parent, item;
  };

  void push(uint64_t sum, int node) {
    merged_.push_back(sum);
    if (track_) merged_nodes_.push_back(node);
  }

  // Keeps the smallest total, the largest, and a total only when it is more than `step` above
  // the last kept one: every dropped total has a kept one at most `step` below it.
  void trim(uint64_t step) {
    size_t kept = 1;
    for (size_t k = 1; k < merged_.size(); ++k) {
      if (merged_[k] > merged_[kept - 1] + step || k + 1 == merged_.size()) {
        merged_[kept] = merged_[k];
        if (track_) merged_nodes_[kept] = merged_nodes_[k];
        ++kept;
      }
    }
    merged_.resize(kept);
    if (track_) merged_nodes_.resize(kept);
  }

  bool track_;
  std::vector<uint64_t> sums_{0}, merged_;
  std::vector<int> node_of_{0}, merged_nodes_;
  std::vector<Node> nodes_;
};

// Sweeps the ranges [first, j+1) for j = first.. with slot size `slot`, calling
// on_range(j + 1, streamed_bytes) while the forced-resident blocks still fit; with `chosen`
// set, stops after `stop` blocks and returns the resident optional items of [first, stop).
template <class OnRange>
void sweep(const std::vector<uint64_t>& weights, uint64_t capacity, int slots, size_t first, uint64_t slot, size_t stop,
           bool& trimmed, OnRange on_range, std::vector<int>* chosen) {
  const uint64_t slot_bytes = static_cast<uint64_t>(slots) * slot;
  if (slot != 0 && (slot_bytes / slots != slot || slot_bytes > capacity)) return;
  const uint64_t room = capacity - slot_bytes;
  const uint64_t trim_step = std::max<uint64_t>(1, capacity / kExactSums);
  SubsetSums sums(chosen != nullptr);
  uint64_t forced = 0, total = 0;
  for (size_t j = first; j < stop; ++j) {
    const uint64_t w = weights[j];
    total += w;
    if (w > slot) {
      if (w > room - forced) return;  // a block too large to stream does not fit: no longer range does
      forced += w;
      sums.prune(room - forced);
    } else {
      sums.add(w, static_cast<int>(j), room - forced, trim_step, trimmed);
    }
    if (!chosen) on_range(j + 1, total - forced - sums.best());
  }
  if (chosen) *chosen = sums.best_items();
}

}  // namespace

StageFits::StageFits(std::vector<uint64_t> weights, uint64_t capacity, int slots)
    : weights_(std::move(weights)), n_(weights_.size()), capacity_(capacity), slots_(slots),
      fits_((n_ + 1) * (n_ + 1)) {
  bool trimmed = false;
  for (size_t first = 0; first < n_; ++first) {
    std::vector<uint64_t> candidates(weights_.begin() + static_cast<std::ptrdiff_t>(first), weights_.end());
    candidates.push_back(0);
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    // Ascending slot sizes: a later candidate replaces an earlier one only when it streams
    // strictly less, so ties keep the smaller slot (less device memory).
    for (uint64_t slot : candidates) {
      auto on_range = [&](size_t last, uint64_t streamed) {
        RangeFit& fit = fits_[first * (n_ + 1) + last];
        if (!fit.feasible || streamed < fit.streamed_bytes) fit = {true, streamed, streamed == 0 ? 0 : slot};
      };
      sweep(weights_, capacity_, slots_, first, slot, n_, trimmed, on_range, nullptr);
    }
  }
  exact_ = !trimmed;
}

std::vector<bool> StageFits::streamed_blocks(size_t first, size_t last) const {
  const RangeFit& fit = at(first, last);
  assert(fit.feasible);
  std::vector<bool> streamed(last - first, false);
  if (fit.streamed_bytes == 0) return streamed;
  // Re-run the sweep that found this fit, with tracking: the same steps give the same totals.
  std::vector<int> resident_items;
  bool trimmed = false;
  sweep(weights_, capacity_, slots_, first, fit.slot_bytes, last, trimmed, [](size_t, uint64_t) {}, &resident_items);
  for (size_t j = first; j < last; ++j) streamed[j - first] = weights_[j] > 0 && weights_[j] <= fit.slot_bytes;
  for (int item : resident_items) streamed[static_cast<size_t>(item) - first] = false;

  // Equal sizes are interchangeable for memory and time: spread the streamed ones evenly.
  std::map<uint64_t, std::vector<size_t>> by_size;
  for (size_t j = first; j < last; ++j)
    if (weights_[j] > 0 && weights_[j] <= fit.slot_bytes) by_size[weights_[j]].push_back(j - first);
  for (const auto& [size, positions] : by_size) {
    size_t count = 0;
    for (size_t p : positions) count += streamed[p];
    for (size_t p : positions) streamed[p] = false;
    for (size_t k = 0; k < count; ++k)
      streamed[positions[(2 * k + 1) * positions.size() / (2 * count)]] = true;
  }
  return streamed;
}

}  // namespace ditrun::partition
