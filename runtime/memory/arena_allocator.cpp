#include "runtime/memory/arena_allocator.h"

#include <iterator>

#include "runtime/core/units.h"
#include "runtime/core/error.h"

namespace ditrun::runtime {

ArenaAllocator::ArenaAllocator(uint64_t capacity_bytes, uint64_t alignment)
    : capacity_(capacity_bytes / alignment * alignment), alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) fail("arena: alignment {} is not a power of two", alignment);
  if (capacity_ > 0) insert_free(0, capacity_);
}

void ArenaAllocator::insert_free(uint64_t offset, uint64_t bytes) {
  free_by_offset_.emplace(offset, bytes);
  free_by_size_.emplace(bytes, offset);
}

void ArenaAllocator::erase_free(std::map<uint64_t, uint64_t>::iterator it) {
  auto [first, last] = free_by_size_.equal_range(it->second);
  for (auto s = first; s != last; ++s)
    if (s->second == it->first) {
      free_by_size_.erase(s);
      break;
    }
  free_by_offset_.erase(it);
}

uint64_t ArenaAllocator::allocate(uint64_t bytes, const std::function<std::string()>& what) {
  const uint64_t need = bytes == 0 ? alignment_ : (bytes + alignment_ - 1) / alignment_ * alignment_;
  std::lock_guard lock(mutex_);
  // Best fit: the smallest free range that holds `need`; among equal sizes, the lowest offset.
  auto fit = free_by_size_.lower_bound(need);
  if (fit == free_by_size_.end() || need < bytes) {
    const uint64_t largest = free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
    fail("device memory: {} needs {}, but the arena of {} has {} in use and its largest free range is {}", what(),
         format_bytes(bytes), format_bytes(capacity_), format_bytes(in_use_),
         format_bytes(largest));
  }
  uint64_t best_offset = fit->second;
  for (auto s = std::next(fit); s != free_by_size_.end() && s->first == fit->first; ++s)
    best_offset = std::min(best_offset, s->second);
  auto range = free_by_offset_.find(best_offset);
  const uint64_t range_bytes = range->second;
  erase_free(range);
  if (range_bytes > need) insert_free(best_offset + need, range_bytes - need);
  allocated_.emplace(best_offset, need);
  in_use_ += need;
  peak_ = std::max(peak_, in_use_);
  return best_offset;
}

void ArenaAllocator::release(uint64_t offset) {
  std::lock_guard lock(mutex_);
  auto it = allocated_.find(offset);
  if (it == allocated_.end()) fail("arena: release of offset {}, which is not allocated", offset);
  uint64_t start = offset, bytes = it->second;
  in_use_ -= bytes;
  allocated_.erase(it);
  // Coalesce with the free ranges on either side.
  auto next = free_by_offset_.lower_bound(start);
  if (next != free_by_offset_.end() && next->first == start + bytes) {
    bytes += next->second;
    erase_free(next);
  }
  auto after = free_by_offset_.lower_bound(start);
  if (after != free_by_offset_.begin()) {
    auto prev = std::prev(after);
    if (prev->first + prev->second == start) {
      start = prev->first;
      bytes += prev->second;
      erase_free(prev);
    }
  }
  insert_free(start, bytes);
}

ArenaStats ArenaAllocator::stats() const {
  std::lock_guard lock(mutex_);
  ArenaStats s;
  s.capacity_bytes = capacity_;
  s.in_use_bytes = in_use_;
  s.peak_bytes = peak_;
  s.largest_free_bytes = free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
  s.allocations = allocated_.size();
  return s;
}

void ArenaAllocator::reset_peak() {
  std::lock_guard lock(mutex_);
  peak_ = in_use_;
}

}  // namespace ditrun::runtime
