// Activations quantized to float8 e4m3 on the fly, for fp8 GEMMs: the scale comes from the
// device (amax / 448, so the largest value maps to e4m3's largest finite value) or, for
// ComfyUI's scaled fp8 checkpoints, from the file's static input scale. The codes go into a
// contiguous [rows, cols] buffer (cuBLASLt's B operand, ld = cols) and the scales into the
// layout cuBLASLt reads for B:
//   per tensor   1 scale
//   per row      one scale per token (outer vector)
//   per block    one scale per 128 columns of each token, N-major (index t + b·rows)
// x / scale saturates at ±448 (a static scale may be smaller than amax / 448).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>

#include "kernels/cuda_plan/gemm_plan.h"
#include "runtime/core/tensor.h"

namespace ditrun::kernels::cuda {

inline constexpr float kE4m3Max = 448.0f;

// Device bytes quantize_fp8 needs in `scratch` besides codes and scales (the amax word).
inline constexpr size_t kFp8ScratchBytes = 256;

// x: device activations (F32 or BF16), any view. codes: rows·cols bytes (16-byte aligned).
// scales: 1, rows, or rows·ceil(cols/128) floats as `mode` says. static_scale: use it instead
// of the amax (Scalar32F only).
void quantize_fp8(const Tensor& x, uint8_t* codes, float* scales, cuda_plan::ScaleMode mode,
                  std::optional<float> static_scale, void* scratch, cudaStream_t stream);

}  // namespace ditrun::kernels::cuda
