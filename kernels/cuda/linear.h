// linear on the GPU: y = x · Wᵀ (+ bias) (then tanh-GELU), with W in any storage type. The
// path per weight comes from cuda_plan::choose_gemm_path: bf16 weights straight into a bf16
// GEMM; fp8 weights into an fp8 GEMM with x quantized on the fly; everything else decoded
// into bf16 (f32 in f32 mode) scratch first. Bias and GELU run in the GEMM's epilogue.
// Falls back to the decode path for a call whose shape an fp8 GEMM cannot take (a token count
// that is not a multiple of 4 under block scaling, unaligned views), so every call runs.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "kernels/cuda/cublaslt_gemm.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/scratch.h"
#include "kernels/cuda/weight_ref.h"

namespace ditrun::kernels::cuda {

struct LinearOptions {
  cuda_plan::DeviceCaps caps;
  bool fp8_gemm = true;                // fp8 weights through fp8 GEMMs (off: decode to bf16)
  size_t gemm_workspace_bytes = 32ull << 20;
};

class LinearOp {
 public:
  explicit LinearOp(const LinearOptions& options);

  // x, y: device activations of one dtype (F32 or BF16), views allowed. bias: n values.
  void run(const Tensor& x, const WeightRef& w, const ParamRef* bias, bool gelu, Tensor& y, Scratch& scratch,
           cudaStream_t stream);
  // The path a weight takes with activations of `activation` dtype, and why.
  cuda_plan::GemmChoice path_for(const Weight& w, DType activation) const;
  CublasLtGemm& gemm() { return gemm_; }

 private:
  LinearOptions options_;
  CublasLtGemm gemm_;
};

}  // namespace ditrun::kernels::cuda
