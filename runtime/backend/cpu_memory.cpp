#include "runtime/backend/cpu_memory.h"

#include <algorithm>
#include <new>

#include <sys/mman.h>

#include "runtime/core/units.h"
#include "runtime/core/error.h"
#include "runtime/memory/arena_allocator.h"

namespace ditrun::runtime {

std::shared_ptr<void> MemoryLedger::charge(uint64_t bytes, const std::function<std::string()>& what) {
  {
    std::lock_guard lock(mutex_);
    if (limit_ > 0 && bytes > limit_ - std::min(limit_, in_use_))
      fail("cpu device memory: {} needs {} but only {} of the {} budget is free ({} in use)", what(),
           format_bytes(bytes), format_bytes(limit_ - std::min(limit_, in_use_)), format_bytes(limit_),
           format_bytes(in_use_));
    in_use_ += bytes;
    peak_ = std::max(peak_, in_use_);
  }
  // The token holds the ledger: tensors may outlive the backend that made them.
  std::shared_ptr<MemoryLedger> self = shared_from_this();
  return std::shared_ptr<void>(static_cast<void*>(this), [self, bytes](void*) { self->release(bytes); });
}

void MemoryLedger::release(uint64_t bytes) {
  std::lock_guard lock(mutex_);
  in_use_ -= std::min(in_use_, bytes);
}

MemoryStats MemoryLedger::stats() const {
  std::lock_guard lock(mutex_);
  return MemoryStats{limit_, in_use_, peak_};
}

void MemoryLedger::reset_peak() {
  std::lock_guard lock(mutex_);
  peak_ = in_use_;
}

std::shared_ptr<uint8_t> allocate_aligned(uint64_t bytes) {
  const size_t size = std::max<size_t>(64, (size_t(bytes) + 63) / 64 * 64);
  auto* p = static_cast<uint8_t*>(::operator new(size, std::align_val_t(64)));
  return std::shared_ptr<uint8_t>(p, [](uint8_t* q) { ::operator delete(q, std::align_val_t(64)); });
}

struct HostArena::State {
  explicit State(uint64_t capacity) : allocator(capacity, 256) {}
  ~State() {
    if (base) munmap(base, bytes);
  }
  ArenaAllocator allocator;
  void* base = nullptr;
  uint64_t bytes = 0;
};

HostArena::HostArena(uint64_t capacity_bytes) : state_(std::make_shared<State>(capacity_bytes)) {
  void* p = mmap(nullptr, capacity_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p != MAP_FAILED) {
    state_->base = p;
    state_->bytes = capacity_bytes;
  }
}

HostArena::~HostArena() = default;

std::shared_ptr<uint8_t> HostArena::allocate(uint64_t bytes, const std::function<std::string()>& what) {
  if (!state_->base) return allocate_aligned(bytes);
  const uint64_t offset = state_->allocator.allocate(std::max<uint64_t>(bytes, 64), what);
  auto* p = static_cast<uint8_t*>(state_->base) + offset;
  // The range goes back when the last holder lets go; the mapping lives as long as any range.
  return std::shared_ptr<uint8_t>(p, [state = state_, offset](uint8_t*) { state->allocator.release(offset); });
}

}  // namespace ditrun::runtime
