// The CUDA backend: one process per GPU (under mpirun the launcher picks the GPU by local
// rank). Device memory is one arena per rank, sized from the plan (runtime/memory), so the
// step loop never calls cudaMalloc; pinned host memory comes from cudaHostAlloc; streams and
// events are CUDA's own, so a WeightStore's copies run on a copy engine behind compute.
//
// Precision. BF16: activations stored as bfloat16, f32 accumulation everywhere (the fast
// mode; the CPU backend's BF16 mode computes the same arithmetic). F32: activations in f32,
// FP32 GEMMs with TF32 off and the own f32 attention kernel, reproducing the CPU backend's
// results within the same tolerances, so GPU correctness is checked against the references.
//
// Determinism: the same bits run to run and in every pipeline/replica layout (one algorithm
// per GEMM shape chosen once, no split-K, no atomics in sums). Against the CPU backend the
// results agree within tolerance, not bit for bit.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "runtime/backend/backend.h"

namespace ditrun::runtime {

struct CudaBackendOptions {
  Precision precision = Precision::BF16;
  int device = 0;                   // CUDA device index
  uint64_t arena_bytes = 0;         // 0: sized by reserve_device_memory, else free memory minus reserve
  uint64_t reserve_bytes = 1ull << 30;  // left free for the CUDA context, cuBLAS/cuDNN and NCCL
  bool fp8_gemm = true;             // fp8 weights through fp8 GEMMs (off: decoded to bf16)
  std::string attention = "auto";   // auto (cuDNN where it applies, else the own kernel), cudnn, flash
};

// Why this process cannot use CUDA device `device` (no driver, no such device), or nothing.
std::optional<std::string> cuda_unavailable_reason(int device = 0);
int cuda_device_count();  // 0 without a driver

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options);

}  // namespace ditrun::runtime
