#include "models/text/text_encoder_cost.h"

#include <fmt/format.h>

#include <map>

#include "models/pipeline/model_cost.h"

namespace ditrun::models::text {

partition::EncoderCost text_encoder_cost(const TextEncoderSource& encoder, int64_t tokens, int activation_element_bytes,
                                         const std::string& name) {
  const TextEncoderConfig& c = encoder.config;
  const double l = double(tokens);
  // Per layer: the projections, the MLP (T5's gated MLP has two input matrices), attention.
  const int64_t width = c.width(), attn = c.is_clip() ? width : c.t5.dim_attn;
  const int64_t ffn = c.is_clip() ? c.clip.intermediate_size : c.t5.dim_ffn;
  const double gemm = 2 * l * (4.0 * double(width * attn) + (c.is_clip() ? 2.0 : 3.0) * double(width * ffn));
  const double attention = 4 * l * l * double(attn);
  // Norms, residual adds, the activation and the gate: a few passes over the layer's rows.
  const double elementwise = double(activation_element_bytes) * l * (8.0 * double(width) + 4.0 * double(ffn));

  std::map<int64_t, partition::BlockCost> layers;
  std::map<int64_t, std::map<std::string, uint64_t>> class_bytes;
  std::vector<NamedShape> names;
  for (const Weight& w : encoder.weights->weights()) names.push_back({w.name, w.shape});
  const T5Naming naming = c.is_clip() ? T5Naming::HuggingFace : t5_naming_of(names);
  for (const Weight& w : encoder.weights->weights()) {
    const std::string hf = t5_name_from(w.name, naming).value_or(w.name);
    const int64_t layer = text_encoder_layer_of(hf);
    if (layer < 0) continue;  // embeddings are read on the host; the final norm is tiny
    partition::BlockCost& b = layers[layer];
    b.weight_bytes += w.stored_bytes();
    class_bytes[layer][weight_class(w.storage)] += w.stored_bytes();
  }
  partition::EncoderCost cost;
  cost.name = name;
  for (auto& [layer, b] : layers) {
    b.name = fmt::format("{}.layers.{}", name, layer);
    b.flops = gemm;
    b.attention_flops = attention;
    b.elementwise_bytes = elementwise;
    const auto& classes = class_bytes[layer];
    b.weight_class = std::max_element(classes.begin(), classes.end(), [](const auto& a, const auto& b) {
                       return a.second < b.second;
                     })->first;
    cost.layers.push_back(b);
  }
  // The residual stream, q/k/v/out, the MLP's two buffers and one head's bias table per head.
  const int64_t heads = c.is_clip() ? c.clip.num_heads : c.t5.num_heads;
  cost.activation_bytes = uint64_t(activation_element_bytes) *
                          uint64_t(l * double(2 * width + 4 * attn + 2 * ffn) + double(heads) * l * l);
  return cost;
}

}  // namespace ditrun::models::text
