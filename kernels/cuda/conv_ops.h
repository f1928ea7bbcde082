// The CUDA side of the VAEs' convolutional ops (kernels/cpu/cpu_kernels.h states each exactly;
// those are the CPU twins). A convolution is patches gathered by im2col into scratch, then the
// backend's GEMM (kernels/cuda/linear.h) with the weight as stored: every weight encoding the
// DiT runs works here, and the same chunking as on the CPU bounds the scratch.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/cuda_kernels.h"
#include "runtime/core/volume.h"

namespace ditrun::kernels::cuda {

// Patches of output positions [p0, p0 + n) of batch item b of x into `patches` (a contiguous
// [1, n, C_in·taps] tensor of x's dtype), columns in W's order (c_in, kt, kh, kw), zeros
// where the window leaves the volume.
void im2col3d(const Tensor& x, int64_t b, const Volume& in, const ConvSpec& spec, int64_t p0, Tensor& patches,
              cudaStream_t stream);
// Group norm: statistics in double over every position of each (batch item, group), `stats`
// device scratch of 2·B·groups doubles; then the affine normalisation. y may alias x.
void group_norm(const Tensor& x, Tensor& y, int64_t groups, float eps, const ParamRef& gamma, const ParamRef& beta,
                double* stats, cudaStream_t stream);
void upsample2x(const Tensor& x, const Volume& in, Tensor& y, cudaStream_t stream);
void avg_down3d(const Tensor& x, const Volume& in, int64_t ft, int64_t fs, Tensor& y, cudaStream_t stream);
void dup_up3d(const Tensor& x, const Volume& in, int64_t ft, int64_t fs, int64_t drop_front, Tensor& y,
              cudaStream_t stream);

// Output positions per im2col + GEMM chunk for a patch of k values (the CPU's rule: ~32 MiB
// of f32 patches, at least 64 rows).
int64_t conv_chunk_positions(int64_t k, int64_t positions);

}  // namespace ditrun::kernels::cuda
