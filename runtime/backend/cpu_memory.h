// The CPU backend's "device memory": host memory with a budget. Every activation, weight
// buffer and loaded weight charges the ledger for as long as it lives, so a plan made for a
// budget is held to it in the CPU runs that CI executes, exactly as a GPU's memory would be.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/backend/backend.h"

namespace ditrun::runtime {

class MemoryLedger : public std::enable_shared_from_this<MemoryLedger> {
 public:
  explicit MemoryLedger(uint64_t limit_bytes) : limit_(limit_bytes) {}

  // Charges `bytes` until the returned token is released; fails naming what() and the budget
  // when the charge would exceed the limit (what() is only called then: charges are hot).
  std::shared_ptr<void> charge(uint64_t bytes, const std::function<std::string()>& what);
  MemoryStats stats() const;
  void reset_peak();

 private:
  void release(uint64_t bytes);

  mutable std::mutex mutex_;
  const uint64_t limit_;
  uint64_t in_use_ = 0;
  uint64_t peak_ = 0;
};

// Host memory aligned for any SIMD width (and for every storage type's blocks), at least one
// cache line so data() is never null.
std::shared_ptr<uint8_t> allocate_aligned(uint64_t bytes);

}  // namespace ditrun::runtime
