// Dispatch to the per-family layouts, and the placement units the planner assigns to devices:
// one unit per transformer block plus everything before (prologue) and after (epilogue).
#include "models/arch/layout.h"

#include <array>

#include "models/arch/layout_builder.h"
#include "models/arch/shape_index.h"
#include "runtime/core/error.h"

namespace ditrun::arch {

std::string_view tensor_role_name(TensorRole r) {
  switch (r) {
    case TensorRole::LinearWeight: return "linear_weight";
    case TensorRole::Bias: return "bias";
    case TensorRole::NormScale: return "norm_scale";
    case TensorRole::Modulation: return "modulation";
    case TensorRole::PatchEmbed: return "patch_embed";
    case TensorRole::PositionEmbed: return "position_embed";
    case TensorRole::Other: return "other";
  }
  return "?";
}

std::vector<TensorSpec> tensor_layout(const ModelConfig& config) {
  switch (config.family) {
    case Family::Flux: return detail::flux_layout(flux_params(config));
    case Family::Wan: return detail::wan_layout(wan_params(config));
    case Family::QwenImage: return detail::qwen_image_layout(qwen_image_params(config));
    case Family::SD3: return detail::sd3_layout(sd3_params(config));
  }
  return {};
}

int64_t parameter_count(const ModelConfig& config) {
  int64_t n = 0;
  for (const auto& t : tensor_layout(config)) n += formats::element_count(t.shape);
  return n;
}

namespace {

struct BlockGroup {
  std::string_view prefix;  // "double_blocks."
  int64_t count;
};

// Block groups in execution order.
std::vector<BlockGroup> block_groups(const ModelConfig& c) {
  switch (c.family) {
    case Family::Flux: {
      const auto& p = flux_params(c);
      return {{"double_blocks.", p.depth}, {"single_blocks.", p.depth_single_blocks}};
    }
    case Family::Wan: return {{"blocks.", wan_params(c).num_layers}};
    case Family::QwenImage: return {{"transformer_blocks.", qwen_image_params(c).num_layers}};
    case Family::SD3: return {{"joint_blocks.", sd3_params(c).depth}};
  }
  return {};
}

// Tensors computed after the last block. (Wan's img_emb is listed after head in the files but
// runs before the blocks, so it stays in the prologue.)
std::span<const std::string_view> epilogue_prefixes(Family f) {
  static constexpr std::array<std::string_view, 1> flux{"final_layer."};
  static constexpr std::array<std::string_view, 1> wan{"head."};
  static constexpr std::array<std::string_view, 2> qwen{"norm_out.", "proj_out."};
  switch (f) {
    case Family::Flux:
    case Family::SD3: return flux;
    case Family::Wan: return wan;
    case Family::QwenImage: return qwen;
  }
  return {};
}

}  // namespace

std::string placement_unit(const ModelConfig& config, std::string_view tensor_name) {
  for (const auto& g : block_groups(config)) {
    if (auto i = detail::block_index(tensor_name, g.prefix)) {
      if (*i >= g.count)
        fail("{} model: tensor '{}' belongs to block {} of '{}', but the model has {}", config.variant, tensor_name, *i,
             g.prefix, g.count);
      return fmt::format("{}{}", g.prefix, *i);
    }
  }
  for (std::string_view e : epilogue_prefixes(config.family))
    if (tensor_name.starts_with(e)) return "epilogue";
  return "prologue";
}

std::vector<std::string> placement_units(const ModelConfig& config) {
  std::vector<std::string> units{"prologue"};
  for (const auto& g : block_groups(config))
    for (int64_t i = 0; i < g.count; ++i) units.push_back(fmt::format("{}{}", g.prefix, i));
  units.emplace_back("epilogue");
  return units;
}

std::span<const std::string_view> gguf_unquantized_prefixes(Family family) {
  static constexpr std::array<std::string_view, 6> flux{"txt_in.",    "img_in.",      "time_in.",
                                                        "vector_in.", "guidance_in.", "final_layer."};
  static constexpr std::array<std::string_view, 8> sd3{"final_layer.", "time_text_embed.", "context_embedder.",
                                                       "t_embedder.",  "y_embedder.",      "x_embedder.",
                                                       "proj_out.weight", "pos_embed"};
  static constexpr std::array<std::string_view, 7> wan{"modulation.",     "patch_embedding.", "text_embedding.",
                                                       "time_projection.", "time_embedding.", "img_emb.",
                                                       "head."};
  static constexpr std::array<std::string_view, 5> qwen{"img_in.", "txt_in.", "time_text_embed.", "proj_out.",
                                                        "norm_out."};
  switch (family) {
    case Family::Flux: return flux;
    case Family::Wan: return wan;
    case Family::QwenImage: return qwen;
    case Family::SD3: return sd3;
  }
  return {};
}

std::span<const std::string_view> gguf_f32_name_fragments(Family family) {
  static constexpr std::array<std::string_view, 1> wan{".modulation"};
  if (family == Family::Wan) return wan;
  return {};
}

}  // namespace ditrun::arch
