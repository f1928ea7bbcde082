// How a checkpoint is written in a target encoding: which tensors get quantized, which stay
// high precision, and what auxiliary tensors (scales, markers) accompany them. Shared by
// `ditrun quantize` (real checkpoints) and `ditrun synth` (random weights), so both produce
// files laid out the way the community converters lay them out (docs/formats.md):
//   GGUF (city96 convert.py + patched llama-quantize): 1-D tensors, tensors of <= 1024
//     elements, >4-D tensors and per-arch high-precision names are F32; per-arch excluded
//     layers (embeddings, final layer) keep the source float type; only 2-D `*weight`
//     tensors are quantized; a K-quant on rows not divisible by 256 falls back to F16.
//   fp8 / fp8-scaled / fp8-block: 2-D `.weight` tensors inside transformer blocks become
//     float8 (plain; ComfyUI scaled with a `scaled_fp8` marker and f32 `scale_weight`;
//     musubi-tuner block-wise with `scale_weight` [out, in/B, 1] in the source dtype);
//     everything else keeps the source float type.
//   bf16 / f16 / f32: every floating tensor in that type.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "models/arch/model_config.h"
#include "models/formats/tensor_record.h"
#include "runtime/core/dtype.h"

namespace ditrun::quant {

using formats::Shape;

enum class TargetKind { Float, Fp8, Fp8Scaled, Fp8Block, Gguf };

struct ConversionTarget {
  TargetKind kind = TargetKind::Float;
  DType dtype = DType::BF16;  // Float: the float type; Fp8*: e4m3/e5m2; Gguf: the quant type
  int64_t block = 64;         // Fp8Block only
  std::string spec;           // as the user wrote it

  // "bf16", "f16", "f32", "fp8", "fp8-e5m2", "fp8-scaled", "fp8-block", "fp8-block64",
  // "fp8-block128", or any GGUF type the dtype table can write ("q8_0", "q4_K", ...).
  static ConversionTarget parse(std::string_view spec);
  bool writes_gguf() const { return kind == TargetKind::Gguf; }
  // GGUF general.file_type (LlamaFileType) for this target; informational.
  uint32_t gguf_file_type() const;
};

std::string conversion_targets_help();

// What one source tensor becomes.
struct TensorConversion {
  DType storage = DType::BF16;
  enum class Scale { None, PerTensor, Block } scale = Scale::None;
};

// `source` is the tensor's stored type in the input (its float type is kept for
// high-precision tensors; quantized or fp8 inputs keep bf16).
TensorConversion plan_conversion(const ConversionTarget& target, std::optional<arch::Family> family, const std::string& name,
                                 const Shape& shape, DType source, bool inside_block);

struct OutputTensor {
  std::string name;
  DType dtype;
  Shape shape;
};

// The tensors written for one source tensor, in file order (weight first, then its scale).
std::vector<OutputTensor> conversion_outputs(const TensorConversion& conv, const std::string& name, const Shape& shape,
                                             DType source, int64_t block);
// Their bytes, from the tensor's real (f32) values.
std::vector<std::vector<uint8_t>> encode_conversion(const TensorConversion& conv, std::span<const float> values,
                                                    const Shape& shape, DType source, int64_t block);

}  // namespace ditrun::quant
