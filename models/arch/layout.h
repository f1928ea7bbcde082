// The tensors of a model: names exactly as the original checkpoints (= ComfyUI = city96 GGUF)
// spell them, PyTorch shapes, the order the reference code's state_dict lists them, and the
// units (prologue, blocks, epilogue) the planner places on devices.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "models/arch/model_config.h"
#include "models/formats/tensor_record.h"

namespace ditrun::arch {

enum class TensorRole {
  LinearWeight,   // [out, in] matrix of a Linear (including the fused qkv / modulation linears)
  Bias,           // bias of a Linear, Conv or affine LayerNorm
  NormScale,      // RMSNorm/LayerNorm weight (query_norm.scale, norm_q.weight, norm3.weight, ...)
  Modulation,     // Wan's learned modulation tables `blocks.N.modulation`, `head.modulation`
  PatchEmbed,     // the Conv patch embedding weight (Wan 5-D, SD3 4-D)
  PositionEmbed,  // learned/fixed position tables (SD3 pos_embed, Wan FLF2V img_emb.emb_pos)
  Other,
};
std::string_view tensor_role_name(TensorRole r);

struct TensorSpec {
  std::string name;
  formats::Shape shape;
  TensorRole role;
};

std::vector<TensorSpec> tensor_layout(const ModelConfig& config);

// The unit a tensor belongs to: "prologue", "double_blocks.3", "single_blocks.0", "blocks.7",
// "transformer_blocks.2", "joint_blocks.5" or "epilogue". Works for names outside the layout
// too (e.g. scaled-fp8 `<layer>.scale_weight`): block names go to their block, the family's
// final-layer names to the epilogue, anything else to the prologue.
std::string placement_unit(const ModelConfig& config, std::string_view tensor_name);
std::vector<std::string> placement_units(const ModelConfig& config);  // in execution order

// city96 lcpp.patch per-architecture exclusions: tensors whose name contains one of these are
// never quantized by llama-quantize (formats.md 3.2).
std::span<const std::string_view> gguf_unquantized_prefixes(Family family);
// convert.py keys_hiprec: tensors whose name contains one of these are kept F32.
std::span<const std::string_view> gguf_f32_name_fragments(Family family);

// Sum of element counts of tensor_layout(config).
int64_t parameter_count(const ModelConfig& config);

}  // namespace ditrun::arch
