#include "kernels/cuda/cuda_check.h"

#include "runtime/core/error.h"

namespace ditrun::kernels::cuda {

void throw_cuda_error(cudaError_t err, std::string_view what) {
  fail("CUDA: {}: {} ({})", what, cudaGetErrorName(err), cudaGetErrorString(err));
}

}  // namespace ditrun::kernels::cuda
