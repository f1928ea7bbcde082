// How the CUDA backend multiplies by a Weight, decided on the host from the weight's storage
// and the device, and the keys under which cuBLASLt descriptors and algorithms are cached.
// Plain C++: the choices and keys are unit-tested without a GPU.
//
// Mapping (reference/cuda.md 1.4): y[T, N] = x[T, K] · W[N, K]ᵀ, all row-major, is cuBLASLt's
// "TN" problem with A = W (m = N, op T, ld = K), B = x (n = T, op N, ld = x's row stride) and
// D = y (ld = y's row stride), column-major throughout. fp8 needs exactly this layout on Hopper.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/weight.h"

namespace ditrun::kernels::cuda_plan {

enum class GemmPath {
  F32,          // f32 activations: the weight as f32 (decoded unless stored f32 without scales), FP32 GEMM, TF32 off
  Bf16,         // bf16 weight used as stored: bf16 x bf16, f32 accumulation
  DequantBf16,  // any other storage: decoded (scales applied) into bf16 scratch, then as Bf16
  Fp8Tensor,    // e4m3 with one scale: x quantized per tensor (device amax, or the checkpoint's input scale)
  Fp8Row,       // e4m3 with one scale per output row: per-row and per-token scale vectors (Hopper)
  Fp8Block128,  // e4m3 with one scale per 128 columns of a row: 1x128 blocks on both sides (Hopper)
};
std::string_view gemm_path_name(GemmPath path);

// What the device can do (cudaDeviceProp major/minor).
struct DeviceCaps {
  int cc_major = 9, cc_minor = 0;
  bool fp8() const { return cc_major * 10 + cc_minor >= 89; }
  // Outer-vector and 128-block fp8 scaling exist on sm_90 only (cuBLAS 12.9+); Blackwell has MX modes instead.
  bool fp8_block_scaling() const { return cc_major == 9 && cc_minor == 0; }
};

struct GemmChoice {
  GemmPath path = GemmPath::DequantBf16;
  std::string why;  // one line, for the log and for tests: why not a faster path
};

// The path for a weight of logical shape [n, k] in `storage` with its scales, for
// activations in f32 (`f32_activations`) or bf16. `fp8_gemm` off keeps fp8 weights on the
// dequantize path (bf16 activations, exact weights), the choice of users who prefer accuracy.
GemmChoice choose_gemm_path(const Weight& w, bool f32_activations, const DeviceCaps& caps, bool fp8_gemm = true);

// ---- scale layouts (cuBLASLt "Scaling Mode" layouts, reference/cuda.md 1.5)

enum class ScaleMode : int32_t {  // values of cublasLtMatmulMatrixScale_t
  Scalar32F = 0,
  OuterVec32F = 3,
  Vec128_32F = 4,
  Blk128x128_32F = 5,
};

// A weight's scales in the order cuBLASLt reads them for operand A (= W, m = rows):
//   PerTensor -> Scalar32F: 1 value
//   PerRow    -> OuterVec32F: m values
//   PerBlock with 128-column blocks -> Vec128_32F: m x L values, M-major (index i + b·m), L = k / 128
// Anything else (musubi's 64-column blocks) has no cuBLASLt layout: fails naming the weight.
struct ScaleLayoutA {
  ScaleMode mode = ScaleMode::Scalar32F;
  std::vector<float> values;
};
ScaleLayoutA scales_for_cublaslt(const Weight& w);

// Scale index of element (i, kk) of operand A (m rows, k columns) under `mode`, as cuBLASLt
// reads it; the same function, for operand B with n rows, gives the activations' scales.
int64_t scale_index(ScaleMode mode, int64_t i, int64_t kk, int64_t rows);

// The CPU model of a scaled fp8 GEMM as cuBLASLt defines it: y[t, o] = Σ_k sA(o,k)·qA[o,k] ·
// sB(t,k)·qB[t,k], with qA / qB the e4m3 codes as values and sA / sB read through scale_index.
// Tests check that a weight's converted scales reproduce its CPU dequantization.
std::vector<float> emulate_scaled_gemm(const std::vector<float>& qa, const std::vector<float>& sa, ScaleMode mode_a,
                                       const std::vector<float>& qb, const std::vector<float>& sb, ScaleMode mode_b,
                                       int64_t m, int64_t n, int64_t k);

// ---- the algorithm cache key

enum class Epilogue : uint8_t { None, Bias, Gelu, BiasGelu };

struct GemmKey {
  GemmPath path = GemmPath::Bf16;
  DType a = DType::BF16, b = DType::BF16, d = DType::BF16;  // A = weight, B = activations, D = output
  int64_t m = 0, n = 0, k = 0;        // m = output features, n = tokens, k = input features
  int64_t lda = 0, ldb = 0, ldd = 0;  // elements
  Epilogue epilogue = Epilogue::None;
  ScaleMode scale_a = ScaleMode::Scalar32F, scale_b = ScaleMode::Scalar32F;
  // Largest power of two (<= 256) dividing every operand address: cuBLASLt's heuristics assume
  // 256 unless told, and an algorithm chosen for 256 may fault on a less aligned view.
  uint32_t alignment = 256;

  bool operator==(const GemmKey&) const = default;
  std::string describe() const;  // "bf16 m=3072 n=4608 k=3072 ld=3072/3072/3072 bias align=256"
};
struct GemmKeyHash {
  size_t operator()(const GemmKey& key) const;
};

// The alignment term of a key: the largest power of two dividing every address, at most 256.
uint32_t common_alignment(std::initializer_list<uintptr_t> addresses);

// cuBLASLt's Tensor Core rules for fp8 (reference/cuda.md 1.2): 16-byte aligned pointers and
// leading dimensions, k % 16 == 0, m % 16 == 0 (and m, n % 4 for block scaling). An empty string
// when the shape qualifies, else why not.
std::string fp8_shape_problem(const GemmKey& key);

}  // namespace ditrun::kernels::cuda_plan
