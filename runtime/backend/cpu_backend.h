// The CPU backend: host memory, OpenBLAS GEMM with f32 accumulation, and the kernels of
// kernels/cpu. Streams and events exist so that code written for a GPU runs unchanged; every
// op runs when it is issued, so a stream is always idle and an event always complete.
#pragma once

#include <memory>

#include "runtime/backend/backend.h"

namespace ditrun::runtime {

struct CpuBackendOptions {
  Precision precision = Precision::F32;
  int threads = 0;  // 0: every core of the machine
};

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options = {});

}  // namespace ditrun::runtime
