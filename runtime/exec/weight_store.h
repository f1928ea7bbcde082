// Where a rank's weights live while it renders: the WeightStore follows one rank's share of a
// Plan (partition/plan.h).
//
//   resident units   loaded once with Backend::load_weight (the device's own copy; the CPU
//                    backend uses the mapped file in place and charges its budget)
//   streamed units   copied once from the checkpoint into a pinned host pool (allocated once,
//                    sized from the plan, never grown), then, every step, copied on a copy
//                    stream into one of `prefetch_depth` device slots ahead of use
//
// The executor brackets each unit with acquire() and release(). acquire() issues the copies
// that may start (a slot is reused only after the compute stream has released the unit that
// occupied it: an event, not a host wait) and makes the compute stream wait for this unit's
// copy; release() records that the slot's reader is done. The streamed units form a cycle
// that wraps from the last unit of one model call to the first of the next, so the copy
// stream runs ahead across steps, and a rank with more slots than streamed units never
// reloads in the middle of a call.
//
// Bytes reach the kernels unchanged whatever the placement, so every plan computes the same
// result bit for bit.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "partition/plan.h"
#include "runtime/exec/model.h"
#include "runtime/memory/arena_layout.h"

namespace ditrun::runtime {

// The units the planner places, in execution order, with the weight names each one reads.
inline constexpr std::string_view kPrologueUnit = "prologue";
inline constexpr std::string_view kEpilogueUnit = "epilogue";
struct UnitWeights {
  std::string name;
  std::vector<std::string> weights;
};
std::vector<UnitWeights> model_units(const Model& model);

class WeightStore final : public WeightLookup {
 public:
  // Maps a weight name to its Weight, nullptr when the checkpoint lacks it (optional weights).
  // The Weights and the memory their bytes point into must outlive the store.
  using FindSource = std::function<const Weight*(const std::string&)>;

  // Every unit resident: the single-device run without a plan.
  WeightStore(Backend& backend, const Model& model, const FindSource& find_source);
  // The units of `rank` as it says; host_budget_bytes (0: no limit) caps the pinned pool.
  // Fails before allocating anything when the plan names a unit the model lacks, when its
  // bytes differ from the checkpoint's (a plan made for other weights), or when the pool
  // would exceed the host budget.
  // `copies`: Overlapped, the copy stream runs ahead of compute (the point of streaming);
  // Synchronous, each unit's copy runs on the compute stream right before it, the simplest
  // alternative, which benchmarks measure streaming against.
  enum class Copies { Overlapped, Synchronous };
  WeightStore(Backend& backend, const Model& model, const FindSource& find_source, const partition::RankPlan& rank,
              uint64_t host_budget_bytes, Copies copies = Copies::Overlapped);
  ~WeightStore() override;
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // A streamed weight is found only while its unit is acquired (anything else would read a
  // slot another unit is being copied into).
  const DeviceWeight* find(std::string_view name) const override;

  bool holds(std::string_view unit) const;  // the unit is placed on this rank
  void acquire(std::string_view unit);
  void release(std::string_view unit);
  // After a model call failed mid-way: waits for the copies in flight and restarts the
  // streaming cycle at its first unit.
  void restart_cycle();

  uint64_t resident_bytes() const { return resident_bytes_; }  // stored bytes, scales included
  uint64_t streamed_bytes() const { return streamed_bytes_; }
  uint64_t pinned_bytes() const { return pool_.bytes; }
  uint64_t slot_bytes() const { return slot_bytes_; }
  int prefetch_depth() const { return int(slots_.size()); }
  uint64_t copies_issued() const { return copies_; }  // streamed unit loads so far
  // The device memory the plan's share needs (all zero without a plan): what the store asked
  // the backend to reserve.
  const ArenaLayout& arena_layout() const { return arena_layout_; }

 private:
  struct StreamedWeight {
    const Weight* source = nullptr;
    uint64_t pool_offset = 0;
    uint64_t slot_offset = 0;
    std::vector<DeviceWeight> in_slot;  // bound to each slot
  };
  struct Unit {
    std::string name;
    bool streamed = false;
    std::vector<const Weight*> weights;  // those the checkpoint has
    std::vector<std::string> names;      // their names as the model reads them (may differ from the file's)
    std::vector<const StreamedWeight*> places;  // their pool and slot places (streamed units)
    int cycle_index = -1;              // position among the streamed units
    int slot = -1;                     // slot holding it while acquired
  };

  void place(const Model& model, const FindSource& find_source, const std::map<std::string, bool, std::less<>>& homes,
             int prefetch_depth, uint64_t host_budget_bytes, const partition::RankPlan* rank);
  size_t unit_index(std::string_view unit, std::string_view what) const;
  void issue_copy();
  void prefetch();

  Backend& backend_;
  Stream copy_stream_;
  std::vector<Unit> units_;
  std::map<std::string, DeviceWeight, std::less<>> resident_;
  std::map<std::string, StreamedWeight, std::less<>> streamed_;
  std::map<std::string, size_t, std::less<>> weight_unit_;  // streamed weight -> unit
  std::vector<size_t> cycle_;                                // streamed units in execution order
  Buffer pool_;
  std::vector<Buffer> slots_;
  std::vector<Event> copy_done_;   // per slot: the last copy into it
  std::vector<Event> slot_free_;   // per slot: its last reader released it (empty handle: never used)
  uint64_t slot_bytes_ = 0;
  uint64_t resident_bytes_ = 0;
  uint64_t streamed_bytes_ = 0;
  uint64_t issued_ = 0;    // streamed occurrences whose copy was issued
  uint64_t acquired_ = 0;  // streamed occurrences acquired (and released) so far
  uint64_t copies_ = 0;
  long active_ = -1;       // the acquired unit
  ArenaLayout arena_layout_;
};

}  // namespace ditrun::runtime
