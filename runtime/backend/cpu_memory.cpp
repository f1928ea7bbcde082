#include "runtime/backend/cpu_memory.h"

#include <algorithm>
#include <new>

#include "runtime/core/error.h"
#include "partition/units.h"

namespace ditrun::runtime {

std::shared_ptr<void> MemoryLedger::charge(uint64_t bytes, const std::function<std::string()>& what) {
  {
    std::lock_guard lock(mutex_);
    if (limit_ > 0 && bytes > limit_ - std::min(limit_, in_use_))
      fail("cpu device memory: {} needs {} but only {} of the {} budget is free ({} in use)", what(),
           partition::format_bytes(bytes), partition::format_bytes(limit_ - std::min(limit_, in_use_)), partition::format_bytes(limit_),
           partition::format_bytes(in_use_));
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

}  // namespace ditrun::runtime
