// cuBLASLt matmuls, one cached plan per GemmKey: the descriptors and the algorithm are chosen
// the first time a shape is seen and reused for every later call, so a step issues no
// heuristic query and every run picks the same algorithm for the same shape (the first
// heuristic result, with split-K reductions excluded: no atomics, the same bits every run).
//
// Operands follow gemm_plan.h's mapping (A = weight, B = activations, D = output, "TN").
// Scale and bias pointers are device pointers set per call.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <unordered_map>

#include "kernels/cuda_plan/gemm_plan.h"

namespace ditrun::kernels::cuda {

// The matmul and layout descriptors of a key (no handle, no device: they build without a
// GPU, so the host tests check every path's attributes). Destroyed with the object.
class GemmDescriptors {
 public:
  explicit GemmDescriptors(const cuda_plan::GemmKey& key);
  ~GemmDescriptors();
  GemmDescriptors(const GemmDescriptors&) = delete;
  GemmDescriptors& operator=(const GemmDescriptors&) = delete;
  void* op = nullptr;  // cublasLtMatmulDesc_t
  void* a = nullptr;   // cublasLtMatrixLayout_t
  void* b = nullptr;
  void* d = nullptr;

 private:
  void build(const cuda_plan::GemmKey& key);
  void release();
};

struct GemmOperands {
  const void* a = nullptr;
  const void* b = nullptr;
  void* d = nullptr;
  const void* bias = nullptr;       // m values in D's type (Epilogue Bias / BiasGelu)
  const float* scale_a = nullptr;   // fp8 paths
  const float* scale_b = nullptr;
};

class CublasLtGemm {
 public:
  // `workspace_bytes`: the workspace every call gets (cuBLAS recommends 32 MiB on Hopper).
  explicit CublasLtGemm(size_t workspace_bytes);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  size_t workspace_bytes() const { return workspace_bytes_; }
  // Fails (ditrun::Error naming the key) when cuBLASLt has no algorithm for it.
  void run(const cuda_plan::GemmKey& key, const GemmOperands& operands, void* workspace, cudaStream_t stream);
  // Whether a plan exists (or can be made) for `key`; the reason when not.
  bool supported(const cuda_plan::GemmKey& key, std::string* why = nullptr);
  size_t cached_plans() const { return plans_.size(); }

 private:
  struct Plan;
  Plan& plan_for(const cuda_plan::GemmKey& key);

  void* handle_ = nullptr;  // cublasLtHandle_t
  size_t workspace_bytes_;
  std::unordered_map<cuda_plan::GemmKey, std::unique_ptr<Plan>, cuda_plan::GemmKeyHash> plans_;
};

}  // namespace ditrun::kernels::cuda
