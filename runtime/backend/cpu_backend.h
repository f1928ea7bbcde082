// The CPU backend: host memory, OpenBLAS GEMM with f32 accumulation, and the kernels of
// kernels/cpu. Ops run when issued on the calling thread (the compute stream); other streams
// are worker threads and device memory is a budgeted ledger, so the code written for a GPU
// (WeightStore prefetching, memory plans) runs unchanged and is held to the same limits.
#pragma once

#include <memory>

#include "runtime/backend/backend.h"

namespace ditrun::runtime {

struct CpuBackendOptions {
  Precision precision = Precision::F32;
  int threads = 0;  // 0: every core of the machine
  uint64_t device_memory_bytes = 0;  // budget of activations + weights; 0: no limit
};

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options = {});

}  // namespace ditrun::runtime
