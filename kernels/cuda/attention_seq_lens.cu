// cuDNN's per-batch sequence-length arrays, written on the caller's stream by one small block
// from lengths passed by value: stream-ordered with the SDPA that reads them, with no
// host-to-device copy (a reused pinned buffer could be overwritten before an earlier copy ran).
#include <cuda_runtime.h>

#include "kernels/cuda/attention_kernels.h"

namespace ditrun::kernels::cuda::detail {
namespace {

__global__ void fill_seq_lens(const SeqLens lens, int32_t* q_lens, int32_t* kv_lens) {
  for (int b = int(threadIdx.x); b < lens.count; b += int(blockDim.x)) {
    q_lens[b] = lens.lq;
    kv_lens[b] = lens.kv[b];
  }
}

}  // namespace

cudaError_t launch_fill_seq_lens(const SeqLens& lens, int32_t* q_lens, int32_t* kv_lens, cudaStream_t stream) {
  if (lens.count <= 0) return cudaSuccess;
  fill_seq_lens<<<1, 256, 0, stream>>>(lens, q_lens, kv_lens);
  return cudaGetLastError();
}

}  // namespace ditrun::kernels::cuda::detail
