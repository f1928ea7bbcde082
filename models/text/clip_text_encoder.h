// CLIP's text transformer (CLIP-L as Flux and SD3 use it, CLIP-G as SDXL and SD3 use it) on
// the Backend, under the `clip_l.safetensors` / `clip_g.safetensors` names
// (`text_model.embeddings.token_embedding.weight`, ...): token and position embeddings, causal
// pre-norm layers with quick_gelu (CLIP-L) or exact GELU (OpenCLIP's bigG) MLPs, the final
// layer norm, the pooled row at the first end-of-text token and its projection.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/quant/weight_set.h"
#include "models/text/t5_encoder.h"
#include "runtime/backend/backend.h"

namespace ditrun::models::text {

struct ClipTextParams {
  int64_t vocab_size = 49408, hidden_size = 768, num_heads = 12, num_layers = 12, intermediate_size = 3072;
  int64_t max_positions = 77;
  double eps = 1e-5;
  std::string hidden_act = "quick_gelu";  // "quick_gelu" (OpenAI's CLIP-L) or "gelu" (OpenCLIP's bigG)
  bool operator==(const ClipTextParams&) const = default;
};

// The reference config's `params` (Hugging Face CLIPTextConfig names). Fails naming `source`.
ClipTextParams clip_text_params_from_json(const nlohmann::json& j, const std::string& source);
bool looks_like_clip_text(const std::vector<NamedShape>& tensors);
// The activation is not in the tensors: the released 1280-wide tower (CLIP-G) takes GELU, the
// others quick_gelu.
ClipTextParams detect_clip_text(const std::vector<NamedShape>& tensors, const std::string& source);

struct ClipTextOutputs {
  HostTensor last;               // [B, L, C] after the final layer norm
  HostTensor penultimate;        // [B, L, C] the second-to-last layer's output, no norm
  HostTensor penultimate_normed; // the same through the final layer norm
  HostTensor pooled;             // [B, C] `last` at each item's first maximal id (the first end-of-text)
  HostTensor pooled_projected;   // [B, projection] pooled · text_projectionᵀ (empty without the weight)
  std::vector<int64_t> pooled_index;
};

class ClipTextEncoder {
 public:
  ClipTextEncoder(ClipTextParams params, runtime::Backend& backend, const quant::WeightSet& weights, std::string source);
  // ids [B, L ≤ max_positions] as values; `sink` receives `layers.N.out`.
  ClipTextOutputs encode(const HostTensor& ids, const EncoderSink& sink = {});
  // Each layer's weights dropped after the layer (T5Encoder::set_streamed).
  void set_streamed(bool streamed) { streamed_ = streamed; }

 private:
  const runtime::DeviceWeight& weight(const std::string& name) { return weights_.get(name); }
  void layer_norm(const Tensor& x, Tensor& y, const std::string& name);

  ClipTextParams p_;
  runtime::Backend& backend_;
  LoadedWeights weights_;
  bool streamed_ = false;
};

}  // namespace ditrun::models::text
