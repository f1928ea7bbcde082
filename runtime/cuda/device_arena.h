// A rank's device memory: one cudaMalloc, made once, handed out in ranges by an
// ArenaAllocator (runtime/memory/arena_allocator.h). An allocation is a shared_ptr whose last
// copy returns its range; the arena's memory lives until the last allocation and the arena
// are both gone, so views and weights never dangle.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "runtime/memory/arena_allocator.h"

namespace ditrun::runtime::cuda {

class DeviceArena {
 public:
  // cudaMalloc of `bytes` on the current device; fails naming the size and the device's free memory.
  DeviceArena(uint64_t bytes, int device);
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;

  struct Allocation {
    std::shared_ptr<void> hold;  // returns the range when the last copy goes
    uint8_t* data = nullptr;
  };
  Allocation allocate(uint64_t bytes, const std::function<std::string()>& what);
  ArenaStats stats() const { return state_->allocator.stats(); }
  void reset_peak() { state_->allocator.reset_peak(); }
  uint64_t capacity() const { return state_->allocator.stats().capacity_bytes; }

 private:
  struct State {
    State(uint64_t bytes) : allocator(bytes) {}
    ArenaAllocator allocator;
    void* base = nullptr;
    int device = 0;
    ~State();
  };
  std::shared_ptr<State> state_;
};

}  // namespace ditrun::runtime::cuda
