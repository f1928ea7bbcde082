// Quantizers that write the fp8 weight encodings ditrun reads (models/quant/weight_set.h,
// docs/formats.md section 4): ComfyUI's per-tensor "scaled_fp8" and musubi-tuner's
// block-wise fp8. Both map each scale group's largest magnitude onto the format's largest
// finite value, so no element saturates and the group uses the full fp8 range.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/quant/weight_set.h"

namespace ditrun::quant {

struct Fp8Quantized {
  std::vector<uint8_t> bytes;  // rows * cols fp8 codes, row-major
  std::vector<float> scales;   // real value = fp8(code) * scale of the element's group
  ScaleLayout layout = ScaleLayout::None;
  // Elements per scale group along a row: the block for PerBlock, cols for PerRow, 0 for
  // PerTensor (one group, the whole tensor).
  int64_t block = 0;
  DType storage = DType::F8_E4M3;
};

// ComfyUI scaled_fp8 / comfy_quant float8: scale = amax / fp8_max (448 for e4m3fn, 57344
// for e5m2), codes = fp8(w / scale) saturating. An all-zero tensor gets scale 1.
Fp8Quantized quantize_fp8_per_tensor(std::span<const float> w, int64_t rows, int64_t cols,
                                     DType fp8 = DType::F8_E4M3);

// musubi-tuner block-wise e4m3fn: one scale per `block` consecutive elements of a row,
// scale = max|w| / 448 clamped to >= 1e-8 (so zero groups stay finite). When cols is not a
// multiple of `block` it falls back, as musubi does, to one scale per row.
//
// musubi stores the scales in the weight's original dtype (usually bf16). Pass that dtype
// as `scale_dtype`: scales are rounded to it before the codes are chosen, so the file's
// scales are exactly the ones the codes were fitted to.
Fp8Quantized quantize_fp8_blockwise(std::span<const float> w, int64_t rows, int64_t cols, int64_t block = 64,
                                    DType scale_dtype = DType::F32);

}  // namespace ditrun::quant
