// A Weight is what the kernels consume: the logical (PyTorch-order) shape, the storage type,
// the stored bytes, and the scales that turn stored values into real ones. Weights stay in
// their storage type until the kernel that uses them; dequantize() here is the CPU reference.
// It lives in runtime/core because the Backend interface takes it; resolving a checkpoint's
// tensors into Weights (models/quant/weight_set.h) is the models' business.
//
// Encodings recognised on top of the container formats (docs/formats.md):
//   plain        bf16 / f16 / f32, or fp8 without scales (a plain cast)
//   gguf         any GGUF block type
//   scaled_fp8   ComfyUI legacy: `scaled_fp8` marker, per-layer f32 `scale_weight`
//                (+ optional `scale_input`); also Kijai "fp8_scaled" files without a marker
//   comfy_quant  ComfyUI mixed precision: `<layer>.comfy_quant` JSON (or the
//                `_quantization_metadata` header entry) with `weight_scale` / `input_scale`
//   block_fp8    musubi-tuner block-wise fp8: `scale_weight` [out, in/B, 1] (or [out, 1]),
//                in the original weight dtype
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"

namespace ditrun {

enum class Encoding { Plain, Gguf, ScaledFp8, ComfyQuant, BlockFp8 };
std::string_view encoding_name(Encoding e);

enum class ScaleLayout {
  None,
  PerTensor,  // one scale
  PerRow,     // one scale per output row (dim 0)
  PerBlock,   // one scale per `scale_block` consecutive elements of each row
};

struct Weight {
  std::string name;
  Shape shape;
  DType storage = DType::F32;
  std::span<const uint8_t> bytes;
  Encoding encoding = Encoding::Plain;
  ScaleLayout scale_layout = ScaleLayout::None;
  std::vector<float> scales;  // PerTensor: 1; PerRow: rows; PerBlock: rows * (cols / scale_block)
  int64_t scale_block = 0;
  uint64_t scale_bytes = 0;   // bytes the scale tensors occupy in the file
  std::optional<float> input_scale;
  std::string unsupported;    // non-empty: this tensor's encoding cannot be decoded yet

  int64_t numel() const { return shape_numel(shape); }
  uint64_t stored_bytes() const { return bytes.size() + scale_bytes; }
  // A 1-D weight (bias, norm scale) is one row: storage blocks run along it.
  int64_t rows() const { return shape.size() <= 1 ? 1 : shape.front(); }
  int64_t cols() const { return rows() == 0 ? 0 : numel() / rows(); }

  // Dequantizes into `out` (numel floats, row-major in `shape`): storage decode, then scales.
  void dequantize(std::span<float> out) const;
  std::vector<float> dequantize() const;
  // Rows [row_begin, row_end) of the weight viewed as [rows, cols]; storage blocks never
  // straddle rows (GGUF blocks run along the innermost dim), so any row range decodes alone.
  void dequantize_rows(int64_t row_begin, int64_t row_end, std::span<float> out) const;
};

}  // namespace ditrun
