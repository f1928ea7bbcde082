#include "models/text/text_encoder_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <regex>

#include "runtime/core/error.h"

namespace ditrun::models::text {
namespace {

nlohmann::json t5_to_json(const T5Params& p) {
  return {{"architecture", p.architecture},
          {"params",
           {{"vocab", p.vocab},
            {"dim", p.dim},
            {"dim_attn", p.dim_attn},
            {"dim_ffn", p.dim_ffn},
            {"num_heads", p.num_heads},
            {"num_layers", p.num_layers},
            {"num_buckets", p.num_buckets},
            {"shared_pos", p.shared_pos}}},
          {"hf_config", {{"relative_attention_max_distance", p.max_distance}}}};
}

nlohmann::json clip_to_json(const ClipTextParams& p) {
  return {{"architecture", "clip-text"},
          {"params",
           {{"vocab_size", p.vocab_size},
            {"hidden_size", p.hidden_size},
            {"num_attention_heads", p.num_heads},
            {"num_hidden_layers", p.num_layers},
            {"intermediate_size", p.intermediate_size},
            {"max_position_embeddings", p.max_positions},
            {"layer_norm_eps", p.eps}}}};
}

// llama.cpp's per-layer T5 encoder names (gguf-py tensor_mapping) and Hugging Face's.
const std::vector<std::pair<std::string, std::string>>& layer_names() {
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"attn_norm.weight", "layer.0.layer_norm.weight"},
      {"attn_q.weight", "layer.0.SelfAttention.q.weight"},
      {"attn_k.weight", "layer.0.SelfAttention.k.weight"},
      {"attn_v.weight", "layer.0.SelfAttention.v.weight"},
      {"attn_o.weight", "layer.0.SelfAttention.o.weight"},
      {"attn_rel_b.weight", "layer.0.SelfAttention.relative_attention_bias.weight"},
      {"ffn_norm.weight", "layer.1.layer_norm.weight"},
      {"ffn_gate.weight", "layer.1.DenseReluDense.wi_0.weight"},
      {"ffn_up.weight", "layer.1.DenseReluDense.wi_1.weight"},
      {"ffn_down.weight", "layer.1.DenseReluDense.wo.weight"},
  };
  return names;
}

}  // namespace

nlohmann::json TextEncoderConfig::to_json() const { return is_clip() ? clip_to_json(clip) : t5_to_json(t5); }

TextEncoderConfig TextEncoderConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail("{}: not a JSON object", source);
  TextEncoderConfig c;
  c.architecture = j.value("architecture", "");
  if (c.is_clip()) c.clip = clip_text_params_from_json(j, source);
  else c.t5 = t5_params_from_json(j, source);  // fails for anything but t5 / umt5
  return c;
}

TextEncoderConfig text_encoder_preset(const std::string& name) {
  TextEncoderConfig c;
  if (name == "t5-xxl" || name == "t5-builtin") {
    c.architecture = "t5";
    c.t5 = T5Params{};
    if (name == "t5-builtin") {  // flux-tiny's context width
      c.t5.vocab = 384;
      c.t5.dim = c.t5.dim_attn = 64;
      c.t5.dim_ffn = 128;
      c.t5.num_heads = 4;
      c.t5.num_layers = 2;
    }
    return c;
  }
  if (name == "umt5-xxl" || name == "umt5-builtin") {
    c.architecture = "umt5";
    c.t5 = T5Params{};
    c.t5.architecture = "umt5";
    c.t5.vocab = 256384;
    c.t5.shared_pos = false;
    if (name == "umt5-builtin") {  // wan-tiny's text width
      c.t5.vocab = 384;
      c.t5.dim = c.t5.dim_attn = 32;
      c.t5.dim_ffn = 64;
      c.t5.num_heads = 2;
      c.t5.num_layers = 2;
    }
    return c;
  }
  if (name == "clip-l" || name == "clip-builtin") {
    c.architecture = "clip-text";
    c.clip = ClipTextParams{};
    if (name == "clip-builtin") {  // flux-tiny's pooled width
      c.clip.vocab_size = 640;
      c.clip.hidden_size = 32;
      c.clip.num_heads = 2;
      c.clip.num_layers = 2;
      c.clip.intermediate_size = 64;
    }
    return c;
  }
  fail("unknown text encoder preset '{}' ({})", name, fmt::join(text_encoder_preset_names(), ", "));
}

std::vector<std::string> text_encoder_preset_names() {
  return {"t5-xxl", "umt5-xxl", "clip-l", "t5-builtin", "umt5-builtin", "clip-builtin"};
}

std::vector<NamedShape> text_encoder_layout(const TextEncoderConfig& c) {
  std::vector<NamedShape> out;
  if (c.is_clip()) {
    const ClipTextParams& p = c.clip;
    const int64_t w = p.hidden_size;
    out.push_back({"text_model.embeddings.token_embedding.weight", {p.vocab_size, w}});
    out.push_back({"text_model.embeddings.position_embedding.weight", {p.max_positions, w}});
    for (int64_t n = 0; n < p.num_layers; ++n) {
      const std::string pre = fmt::format("text_model.encoder.layers.{}.", n);
      for (const char* norm : {"layer_norm1", "layer_norm2"}) {
        out.push_back({pre + norm + ".weight", {w}});
        out.push_back({pre + norm + ".bias", {w}});
      }
      for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        out.push_back({pre + "self_attn." + proj + ".weight", {w, w}});
        out.push_back({pre + "self_attn." + proj + ".bias", {w}});
      }
      out.push_back({pre + "mlp.fc1.weight", {p.intermediate_size, w}});
      out.push_back({pre + "mlp.fc1.bias", {p.intermediate_size}});
      out.push_back({pre + "mlp.fc2.weight", {w, p.intermediate_size}});
      out.push_back({pre + "mlp.fc2.bias", {w}});
    }
    out.push_back({"text_model.final_layer_norm.weight", {w}});
    out.push_back({"text_model.final_layer_norm.bias", {w}});
    out.push_back({"text_projection.weight", {w, w}});
    return out;
  }
  const T5Params& p = c.t5;
  out.push_back({"shared.weight", {p.vocab, p.dim}});
  for (int64_t n = 0; n < p.num_layers; ++n) {
    const std::string pre = fmt::format("encoder.block.{}.layer.", n);
    out.push_back({pre + "0.layer_norm.weight", {p.dim}});
    for (const char* proj : {"q", "k", "v"}) out.push_back({pre + "0.SelfAttention." + proj + ".weight", {p.dim_attn, p.dim}});
    out.push_back({pre + "0.SelfAttention.o.weight", {p.dim, p.dim_attn}});
    if (n == 0 || !p.shared_pos)
      out.push_back({pre + "0.SelfAttention.relative_attention_bias.weight", {p.num_buckets, p.num_heads}});
    out.push_back({pre + "1.layer_norm.weight", {p.dim}});
    out.push_back({pre + "1.DenseReluDense.wi_0.weight", {p.dim_ffn, p.dim}});
    out.push_back({pre + "1.DenseReluDense.wi_1.weight", {p.dim_ffn, p.dim}});
    out.push_back({pre + "1.DenseReluDense.wo.weight", {p.dim, p.dim_ffn}});
  }
  out.push_back({"encoder.final_layer_norm.weight", {p.dim}});
  return out;
}

int64_t text_encoder_layer_of(const std::string& name) {
  static const std::regex layer(R"((?:encoder\.block|text_model\.encoder\.layers|enc\.blk)\.([0-9]+)\..*)");
  std::smatch m;
  return std::regex_match(name, m, layer) ? std::stoll(m[1]) : -1;
}

std::optional<std::string> hf_name_of_llama_t5(const std::string& name) {
  if (name == "token_embd.weight") return "shared.weight";
  if (name == "enc.output_norm.weight") return "encoder.final_layer_norm.weight";
  static const std::regex block(R"(enc\.blk\.([0-9]+)\.(.*))");
  std::smatch m;
  if (!std::regex_match(name, m, block)) return std::nullopt;
  for (const auto& [llama, hf] : layer_names())
    if (m[2] == llama) return fmt::format("encoder.block.{}.{}", m[1].str(), hf);
  return std::nullopt;
}

std::optional<std::string> llama_t5_name_of_hf(const std::string& name) {
  if (name == "shared.weight") return "token_embd.weight";
  if (name == "encoder.final_layer_norm.weight") return "enc.output_norm.weight";
  static const std::regex block(R"(encoder\.block\.([0-9]+)\.(.*))");
  std::smatch m;
  if (!std::regex_match(name, m, block)) return std::nullopt;
  for (const auto& [llama, hf] : layer_names())
    if (m[2] == hf) return fmt::format("enc.blk.{}.{}", m[1].str(), llama);
  return std::nullopt;
}

bool uses_llama_t5_names(const std::vector<NamedShape>& tensors) {
  const auto has = [&](const char* n) {
    return std::any_of(tensors.begin(), tensors.end(), [&](const NamedShape& s) { return s.name == n; });
  };
  return has("token_embd.weight") && has("enc.blk.0.attn_rel_b.weight");
}

std::vector<NamedShape> as_hf_t5_names(const std::vector<NamedShape>& tensors) {
  std::vector<NamedShape> out;
  for (const NamedShape& t : tensors)
    if (const auto hf = hf_name_of_llama_t5(t.name)) out.push_back({*hf, t.shape});
  return out;
}

}  // namespace ditrun::models::text
