#include "runtime/exec/weight_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "runtime/core/units.h"
#include "runtime/memory/arena_layout.h"
#include "runtime/core/error.h"

namespace ditrun::runtime {
namespace {

// Every weight starts on a 256-byte boundary in the pool and in a slot: what CUDA's
// allocations guarantee, and more than any storage type's block or SIMD load needs.
constexpr uint64_t kAlignment = 256;
uint64_t align_up(uint64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

}  // namespace

std::vector<UnitWeights> model_units(const Model& model) {
  std::vector<UnitWeights> units;
  units.push_back({std::string(kPrologueUnit), model.prologue_weight_names()});
  for (const auto& block : model.blocks()) units.push_back({block->name(), block->weight_names()});
  units.push_back({std::string(kEpilogueUnit), model.epilogue_weight_names()});
  return units;
}

WeightStore::WeightStore(Backend& backend, const Model& model, const FindSource& find_source)
    : backend_(backend), copy_stream_(backend.create_stream()) {
  std::map<std::string, bool, std::less<>> homes;
  for (const auto& unit : model_units(model)) homes[unit.name] = false;
  place(model, find_source, homes, 0, 0, nullptr);
}

WeightStore::WeightStore(Backend& backend, const Model& model, const FindSource& find_source,
                         const partition::RankPlan& rank, uint64_t host_budget_bytes, Copies copies)
    : backend_(backend),
      copy_stream_(copies == Copies::Synchronous ? backend.compute_stream() : backend.create_stream()) {
  std::map<std::string, bool, std::less<>> homes;
  for (const auto& block : rank.blocks)
    if (!homes.emplace(block.name, block.home == partition::Home::streamed).second)
      fail("plan rank {}: block '{}' is listed twice", rank.rank, block.name);
  place(model, find_source, homes, rank.prefetch_depth, host_budget_bytes, &rank);
}

WeightStore::~WeightStore() {
  try {
    backend_.synchronize(copy_stream_);  // no copy may land in a freed slot
  } catch (const std::exception& e) {
    spdlog::error("weight store: a copy failed: {}", e.what());
  }
}

void WeightStore::place(const Model& model, const FindSource& find_source,
                        const std::map<std::string, bool, std::less<>>& homes, int prefetch_depth,
                        uint64_t host_budget_bytes, const partition::RankPlan* rank) {
  // 1. Which units, which weights, how many bytes: everything is checked before allocating.
  std::map<std::string, bool, std::less<>> unplaced(homes);
  for (auto& unit : model_units(model)) {
    auto home = homes.find(unit.name);
    if (home == homes.end()) continue;  // another rank's
    unplaced.erase(unit.name);
    Unit u{unit.name, home->second, {}, {}, {}, -1, -1};
    uint64_t stored = 0;
    for (const auto& name : unit.weights) {
      const Weight* w = find_source(name);
      if (!w) continue;
      stored += w->stored_bytes();
      u.weights.push_back(w);
      u.names.push_back(name);
    }
    if (rank) {
      auto planned = std::find_if(rank->blocks.begin(), rank->blocks.end(),
                                  [&](const partition::PlacedBlock& b) { return b.name == u.name; });
      if (planned->bytes != stored)
        fail("plan rank {}: block '{}' has {} bytes in the plan but {} in this checkpoint (was the plan made for "
             "other weights?)",
             rank->rank, u.name, planned->bytes, stored);
    }
    (u.streamed ? streamed_bytes_ : resident_bytes_) += stored;
    units_.push_back(std::move(u));
  }
  if (!unplaced.empty())
    fail("plan{}: block '{}' is not a unit of this model (units are prologue, the blocks, epilogue)",
         rank ? fmt::format(" rank {}", rank->rank) : "", unplaced.begin()->first);

  uint64_t pool_bytes = 0;
  for (size_t i = 0; i < units_.size(); ++i) {
    Unit& u = units_[i];
    if (!u.streamed) continue;
    u.cycle_index = int(cycle_.size());
    cycle_.push_back(i);
    uint64_t offset = 0;
    for (size_t k = 0; k < u.weights.size(); ++k) {
      const Weight* w = u.weights[k];
      auto placed = streamed_.emplace(u.names[k], StreamedWeight{w, pool_bytes + offset, offset, {}}).first;
      u.places.push_back(&placed->second);  // map nodes never move
      weight_unit_.emplace(u.names[k], i);
      offset += align_up(w->bytes.size());
    }
    pool_bytes += offset;
    slot_bytes_ = std::max(slot_bytes_, offset);
  }
  if (!cycle_.empty() && prefetch_depth < 2)
    fail("plan rank {}: {} blocks stream but prefetch_depth is {} (at least 2 slots let copies overlap compute)",
         rank ? rank->rank : 0, cycle_.size(), prefetch_depth);
  if (host_budget_bytes > 0 && pool_bytes > host_budget_bytes)
    fail("pinned host pool: {} streamed blocks need {} but the host budget is {} ({} short); give the plan more "
         "host RAM or keep more blocks resident",
         cycle_.size(), format_bytes(pool_bytes), format_bytes(host_budget_bytes),
         format_bytes(pool_bytes - host_budget_bytes));
  // More slots than streamed units would only hold the same units twice.
  const size_t depth = cycle_.empty() ? 0 : std::min<size_t>(size_t(prefetch_depth), cycle_.size());

  // 2. The device memory this share of the plan needs, reserved before anything is allocated
  // (a backend with an arena sizes it from this).
  if (rank) {
    const uint64_t element = uint64_t(dtype_info(backend_.activation_dtype()).block_bytes);
    std::vector<const Weight*> all;
    uint64_t resident_device = 0, slot_scales = 0;
    for (const Unit& u : units_)
      for (const Weight* w : u.weights) {
        all.push_back(w);
        // Scales as f32, and for fp8 weights a second copy in cuBLASLt's layout.
        const uint64_t scales = w->scales.size() + (w->storage == DType::F8_E4M3 ? std::max<size_t>(w->scales.size(), 1) : 0);
        if (u.streamed) slot_scales += scales ? align_up(scales * sizeof(float)) : 0;
        else resident_device += weight_device_bytes(w->bytes.size(), scales);
      }
    ArenaRequest request;
    request.resident_bytes = resident_device;
    request.prefetch_depth = int(depth);
    request.slot_bytes = depth ? slot_bytes_ + slot_scales : 0;
    request.activation_bytes = rank->activation_bytes;
    request.workspace = estimate_workspace(all, rank->activation_bytes, element);
    arena_layout_ = layout_arena(request);
    spdlog::info("device memory on {}: {}", backend_.name(), arena_layout_.describe());
    backend_.reserve_device_memory(arena_layout_.total_bytes);
  }

  // 3. Resident weights: the device's own copy, loaded once.
  const auto start = std::chrono::steady_clock::now();
  for (const Unit& u : units_)
    if (!u.streamed)
      for (size_t k = 0; k < u.weights.size(); ++k)
        resident_.emplace(u.names[k], backend_.load_weight(*u.weights[k], copy_stream_));

  // 4. The pinned pool, filled once from the checkpoint; the device slots.
  if (!cycle_.empty()) {
    pool_ = backend_.allocate_pinned(pool_bytes);
    for (auto& [name, sw] : streamed_)
      if (!sw.source->bytes.empty()) std::memcpy(pool_.data + sw.pool_offset, sw.source->bytes.data(), sw.source->bytes.size());
    for (size_t j = 0; j < depth; ++j) slots_.push_back(backend_.allocate_device(slot_bytes_));
    for (auto& [name, sw] : streamed_)
      for (const Buffer& slot : slots_) sw.in_slot.push_back(backend_.bind_weight(*sw.source, slot, sw.slot_offset));
    copy_done_.resize(depth);
    slot_free_.resize(depth);
  }
  backend_.synchronize(copy_stream_);
  spdlog::log(cycle_.empty() ? spdlog::level::debug : spdlog::level::info,
              "weights on {}: {} resident, {} streamed from a {} pinned pool through {} slots of {} ({:.1f} s)",
               backend_.name(), format_bytes(resident_bytes_), format_bytes(streamed_bytes_), format_bytes(pool_.bytes),
               slots_.size(), format_bytes(slot_bytes_),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  prefetch();
}

const DeviceWeight* WeightStore::find(std::string_view name) const {
  if (auto it = resident_.find(name); it != resident_.end()) return &it->second;
  auto it = streamed_.find(name);
  if (it == streamed_.end()) return nullptr;
  const Unit& unit = units_[weight_unit_.find(name)->second];
  if (active_ < 0 || &units_[size_t(active_)] != &unit)
    fail("weight '{}' of streamed block '{}' was read outside that block", name, unit.name);
  return &it->second.in_slot[size_t(unit.slot)];
}

bool WeightStore::holds(std::string_view unit) const {
  return std::any_of(units_.begin(), units_.end(), [&](const Unit& u) { return u.name == unit; });
}

size_t WeightStore::unit_index(std::string_view unit, std::string_view what) const {
  for (size_t i = 0; i < units_.size(); ++i)
    if (units_[i].name == unit) return i;
  fail("weight store: {} '{}', which is not placed on this rank", what, unit);
}

void WeightStore::issue_copy() {
  const size_t slot = issued_ % slots_.size();
  const Unit& unit = units_[cycle_[issued_ % cycle_.size()]];
  if (slot_free_[slot].handle) backend_.wait_event(copy_stream_, slot_free_[slot]);
  for (const StreamedWeight* sw : unit.places)
    backend_.copy_to_device({pool_.data + sw->pool_offset, sw->source->bytes.size()}, slots_[slot], sw->slot_offset,
                            copy_stream_);
  copy_done_[slot] = backend_.record_event(copy_stream_);
  ++issued_;
  ++copies_;
}

// Occurrence m goes into slot m % depth, which occurrence m - depth must have released: so
// at most `depth` occurrences past the last released one may be in flight.
void WeightStore::prefetch() {
  while (!slots_.empty() && issued_ < acquired_ + slots_.size()) issue_copy();
}

void WeightStore::acquire(std::string_view unit_name) {
  const size_t index = unit_index(unit_name, "acquire");
  if (active_ >= 0) fail("weight store: acquire '{}' while '{}' is still acquired", unit_name, units_[size_t(active_)].name);
  Unit& unit = units_[index];
  if (unit.streamed) {
    const Unit& expected = units_[cycle_[acquired_ % cycle_.size()]];
    if (&expected != &unit)
      fail("weight store: streamed block '{}' runs out of order (the next streamed block is '{}')", unit.name,
           expected.name);
    prefetch();
    unit.slot = int(acquired_ % slots_.size());
    backend_.wait_event(backend_.compute_stream(), copy_done_[size_t(unit.slot)]);
  }
  active_ = long(index);
}

void WeightStore::release(std::string_view unit_name) {
  const size_t index = unit_index(unit_name, "release");
  if (active_ != long(index)) fail("weight store: release '{}', which is not acquired", unit_name);
  Unit& unit = units_[index];
  if (unit.streamed) {
    slot_free_[size_t(unit.slot)] = backend_.record_event(backend_.compute_stream());
    ++acquired_;
    prefetch();  // the freed slot takes the next copy now, not when its block comes round
  }
  active_ = -1;
}

void WeightStore::restart_cycle() {
  backend_.synchronize(copy_stream_);
  backend_.synchronize(backend_.compute_stream());
  active_ = -1;
  issued_ = acquired_ = 0;
  for (auto& e : slot_free_) e = Event{};
  prefetch();
}

}  // namespace ditrun::runtime
