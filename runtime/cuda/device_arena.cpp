#include "runtime/cuda/device_arena.h"

#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_check.h"
#include "runtime/core/units.h"
#include "runtime/core/error.h"

namespace ditrun::runtime::cuda {

DeviceArena::DeviceArena(uint64_t bytes, int device) : state_(std::make_shared<State>(bytes)) {
  state_->device = device;
  if (bytes == 0) return;
  if (const cudaError_t err = cudaMalloc(&state_->base, bytes); err != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    fail("cuda:{}: cannot allocate a device arena of {} ({} of {} free): {}", device, format_bytes(bytes),
         format_bytes(free_b), format_bytes(total_b), cudaGetErrorString(err));
  }
}

DeviceArena::State::~State() {
  if (base) {
    int current = 0;
    cudaGetDevice(&current);
    cudaSetDevice(device);
    cudaFree(base);
    cudaSetDevice(current);
  }
}

DeviceArena::~DeviceArena() = default;

DeviceArena::Allocation DeviceArena::allocate(uint64_t bytes, const std::function<std::string()>& what) {
  const uint64_t offset = state_->allocator.allocate(bytes, what);
  uint8_t* data = static_cast<uint8_t*>(state_->base) + offset;
  // The range goes back when the last holder lets go; the state (and the cudaMalloc) lives
  // at least as long.
  std::shared_ptr<void> hold(data, [state = state_, offset](void*) { state->allocator.release(offset); });
  return Allocation{std::move(hold), data};
}

}  // namespace ditrun::runtime::cuda
