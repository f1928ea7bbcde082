// Scratch device memory the kernels borrow from their backend for one op: a decoded weight,
// a quantized copy of an input, the GEMM workspace. Each use has one buffer per backend,
// grown (within the backend's arena) when an op needs more and kept, so a step allocates
// nothing once every shape has been seen. A buffer is valid until the next get() of the same
// use; all users run on the backend's compute stream, in order.
#pragma once

#include <cstddef>

namespace ditrun::kernels::cuda {

enum class ScratchUse {
  GemmWorkspace,
  DecodedWeight,
  QuantizedInput,
  InputScales,
  Fp8Amax,
  Bias,
  ParamA,  // small parameters decoded for one op (gamma, beta; a norm scale)
  ParamB,
  Attention,
  AttentionLengths,
  ConvPatches,  // im2col patches of one chunk of output positions
  GroupStats,
  Count
};

class Scratch {
 public:
  virtual ~Scratch() = default;
  // At least `bytes` bytes, 256-byte aligned.
  virtual void* get(ScratchUse use, size_t bytes) = 0;
};

}  // namespace ditrun::kernels::cuda
