// Error checks for CUDA runtime calls and kernel launches: a failure becomes a ditrun::Error
// of one line naming what was being done and CUDA's own name for the error.
//
// This header (like every header a .cu file includes) stays free of fmt: nvcc's C++20 front
// end cannot compile fmt's compile-time format checks, so messages are formatted in .cpp files
// (cuda_check.cpp, kernel_checks.cpp) and .cu files only call them.
#pragma once

#include <cuda_runtime_api.h>

#include <string_view>

namespace ditrun::kernels::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, std::string_view what);

inline void check_cuda(cudaError_t err, std::string_view what) {
  if (err != cudaSuccess) throw_cuda_error(err, what);
}

// After a kernel launch: a bad configuration is reported at once; faults inside the kernel
// surface at the next synchronizing call.
inline void check_launch(std::string_view kernel) { check_cuda(cudaGetLastError(), kernel); }

}  // namespace ditrun::kernels::cuda
