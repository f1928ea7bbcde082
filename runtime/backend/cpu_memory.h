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

// The CPU backend's "device memory" as a GPU backend has it: one reserved range of address
// space (mmap, MAP_NORESERVE: pages appear when first touched) handed out by an
// ArenaAllocator. A step's tensors reuse the pages the previous step touched, instead of a
// fresh mmap and a page fault per 4 KiB for every large tensor (page faults were 7.6% of the
// CPU time of the timing test on the 2-core build machine before), and the CPU backend
// fragments exactly as a CUDA arena would.
// Where the kernel refuses the reservation, allocations fall back to allocate_aligned.
class HostArena {
 public:
  explicit HostArena(uint64_t capacity_bytes);
  ~HostArena();
  HostArena(const HostArena&) = delete;
  HostArena& operator=(const HostArena&) = delete;

  // `bytes` bytes (64-byte aligned), kept until the returned pointer's last copy goes.
  std::shared_ptr<uint8_t> allocate(uint64_t bytes, const std::function<std::string()>& what);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace ditrun::runtime
