// A Weight is what the kernels consume: the logical (PyTorch-order) shape, the storage type,
// the stored bytes, and the scales that turn stored values into real ones. Weights stay in
// their storage type until the kernel that uses them; dequantize() here is the CPU reference.
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

#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/formats/checkpoint.h"

namespace ditrun::quant {

using formats::Shape;

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

  int64_t numel() const { return formats::element_count(shape); }
  uint64_t stored_bytes() const { return bytes.size() + scale_bytes; }
  int64_t rows() const { return shape.empty() ? 1 : shape.front(); }
  int64_t cols() const { return rows() == 0 ? 0 : numel() / rows(); }

  // Dequantizes into `out` (numel floats, row-major in `shape`): storage decode, then scales.
  void dequantize(std::span<float> out) const;
  std::vector<float> dequantize() const;
};

// Every weight of a checkpoint with its encoding resolved. Auxiliary tensors (scales,
// markers) are folded into the weights they belong to and do not appear on their own.
class WeightSet {
 public:
  explicit WeightSet(const formats::Checkpoint& checkpoint);

  const std::vector<Weight>& weights() const { return weights_; }
  const Weight* find(std::string_view name) const;
  const Weight& at(std::string_view name) const;
  // The legacy `scaled_fp8` marker with 2 elements means "dequantize, then compute in high
  // precision" (no fp8 matmul).
  bool has_scaled_fp8_marker() const { return has_marker_; }
  bool fp8_matmul_allowed() const { return fp8_matmul_allowed_; }
  const formats::Checkpoint& checkpoint() const { return checkpoint_; }

 private:
  const formats::Checkpoint& checkpoint_;
  std::vector<Weight> weights_;
  std::unordered_map<std::string, size_t> by_name_;
  bool has_marker_ = false;
  bool fp8_matmul_allowed_ = true;
};

// True for the tensor names that carry scales or markers rather than weights.
bool is_auxiliary_tensor(std::string_view name);

}  // namespace ditrun::quant
