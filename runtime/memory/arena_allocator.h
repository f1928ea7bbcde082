// Sub-allocation of one device arena. A rank allocates its device memory once (one
// cudaMalloc, sized from its plan) and every weight, prefetch slot, activation and workspace
// is a range of it: no cudaMalloc in the step loop, and an allocation that does not fit fails
// at once, naming what asked, the request and the arena's state.
//
// Pure bookkeeping over offsets [0, capacity): best fit (the smallest free range that holds
// the request, the lowest offset among equals), frees coalesce with their neighbours. The
// same sequence of calls always gives the same offsets, so runs are reproducible. Thread-safe.
//
// Streams: the allocator knows nothing of them. Memory freed by a kernel's owner and handed
// out again is safe on the same stream (work runs in issue order); a user on another stream
// must first wait for the compute stream (the CUDA backend's transfers do).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ditrun::runtime {

struct ArenaStats {
  uint64_t capacity_bytes = 0;
  uint64_t in_use_bytes = 0;       // allocated, alignment padding included
  uint64_t peak_bytes = 0;         // since creation or the last reset_peak()
  uint64_t largest_free_bytes = 0; // the biggest request that would succeed now
  uint64_t allocations = 0;        // live
};

class ArenaAllocator {
 public:
  explicit ArenaAllocator(uint64_t capacity_bytes, uint64_t alignment = 256);

  // The offset of `bytes` (rounded up to the alignment; 0 bytes still takes one unit so every
  // allocation has its own offset). Fails with ditrun::Error naming what() (called only then).
  uint64_t allocate(uint64_t bytes, const std::function<std::string()>& what);
  // Returns a range allocate() gave; an unknown offset is a programming error (Error).
  void release(uint64_t offset);

  ArenaStats stats() const;
  void reset_peak();
  uint64_t alignment() const { return alignment_; }

 private:
  void insert_free(uint64_t offset, uint64_t bytes);
  void erase_free(std::map<uint64_t, uint64_t>::iterator it);

  mutable std::mutex mutex_;
  const uint64_t capacity_, alignment_;
  std::map<uint64_t, uint64_t> free_by_offset_;        // offset -> bytes
  std::multimap<uint64_t, uint64_t> free_by_size_;     // bytes -> offset
  std::unordered_map<uint64_t, uint64_t> allocated_;   // offset -> bytes
  uint64_t in_use_ = 0, peak_ = 0;
};

}  // namespace ditrun::runtime
