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
            {"layer_norm_eps", p.eps},
            {"hidden_act", p.hidden_act}}}};
}

// Per layer: Hugging Face's name (after "encoder.block.N.layer."), llama.cpp's (after
// "enc.blk.N.") and Wan's (after "blocks.N.").
struct LayerName {
  const char *hf, *llama, *wan;
};
constexpr LayerName kLayerNames[] = {
    {"0.layer_norm.weight", "attn_norm.weight", "norm1.weight"},
    {"0.SelfAttention.q.weight", "attn_q.weight", "attn.q.weight"},
    {"0.SelfAttention.k.weight", "attn_k.weight", "attn.k.weight"},
    {"0.SelfAttention.v.weight", "attn_v.weight", "attn.v.weight"},
    {"0.SelfAttention.o.weight", "attn_o.weight", "attn.o.weight"},
    {"0.SelfAttention.relative_attention_bias.weight", "attn_rel_b.weight", "pos_embedding.embedding.weight"},
    {"1.layer_norm.weight", "ffn_norm.weight", "norm2.weight"},
    {"1.DenseReluDense.wi_0.weight", "ffn_gate.weight", "ffn.gate.0.weight"},  // through GELU
    {"1.DenseReluDense.wi_1.weight", "ffn_up.weight", "ffn.fc1.weight"},
    {"1.DenseReluDense.wo.weight", "ffn_down.weight", "ffn.fc2.weight"},
};
// Outside the layers: embedding, final norm (and Wan's shared bias table).
constexpr LayerName kModelNames[] = {
    {"shared.weight", "token_embd.weight", "token_embedding.weight"},
    {"encoder.final_layer_norm.weight", "enc.output_norm.weight", "norm.weight"},
};
constexpr const char* kHfBlock0Bias = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";
constexpr const char* kWanSharedBias = "pos_embedding.embedding.weight";

const char* in(const LayerName& n, T5Naming naming) {
  return naming == T5Naming::HuggingFace ? n.hf : naming == T5Naming::LlamaCpp ? n.llama : n.wan;
}
std::string block_prefix(T5Naming naming, const std::string& block) {
  return naming == T5Naming::HuggingFace ? "encoder.block." + block + ".layer."
         : naming == T5Naming::LlamaCpp  ? "enc.blk." + block + "."
                                         : "blocks." + block + ".";
}
const std::regex& block_pattern(T5Naming naming) {
  static const std::regex hf(R"(encoder\.block\.([0-9]+)\.layer\.(.*))"), llama(R"(enc\.blk\.([0-9]+)\.(.*))"),
      wan(R"(blocks\.([0-9]+)\.(.*))");
  return naming == T5Naming::HuggingFace ? hf : naming == T5Naming::LlamaCpp ? llama : wan;
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
  if (name == "clip-g") {  // OpenCLIP ViT-bigG's text tower (SDXL's and SD3's clip_g.safetensors)
    c.architecture = "clip-text";
    c.clip = ClipTextParams{.hidden_size = 1280, .num_heads = 20, .num_layers = 32, .intermediate_size = 5120,
                            .hidden_act = "gelu"};
    return c;
  }
  fail("unknown text encoder preset '{}' ({})", name, fmt::join(text_encoder_preset_names(), ", "));
}

std::vector<std::string> text_encoder_preset_names() {
  return {"t5-xxl", "umt5-xxl", "clip-l", "clip-g", "t5-builtin", "umt5-builtin", "clip-builtin"};
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
  static const std::regex layer(R"((?:encoder\.block|text_model\.encoder\.layers|enc\.blk|blocks)\.([0-9]+)\..*)");
  std::smatch m;
  return std::regex_match(name, m, layer) ? std::stoll(m[1]) : -1;
}

std::string t5_block_prefix(T5Naming naming, int64_t block) { return block_prefix(naming, std::to_string(block)); }

std::string_view to_string(T5Naming naming) {
  return naming == T5Naming::HuggingFace ? "Hugging Face" : naming == T5Naming::LlamaCpp ? "llama.cpp" : "Wan";
}

std::optional<std::string> t5_name_as(const std::string& hf_name, T5Naming naming, bool shared_pos) {
  if (naming == T5Naming::Wan && shared_pos && hf_name == kHfBlock0Bias) return kWanSharedBias;
  for (const LayerName& n : kModelNames)
    if (hf_name == n.hf) return in(n, naming);
  std::smatch m;
  if (!std::regex_match(hf_name, m, block_pattern(T5Naming::HuggingFace))) return std::nullopt;
  for (const LayerName& n : kLayerNames)
    if (m[2] == n.hf) return block_prefix(naming, m[1]) + in(n, naming);
  return std::nullopt;
}

std::optional<std::string> t5_name_from(const std::string& name, T5Naming naming) {
  if (naming == T5Naming::Wan && name == kWanSharedBias) return kHfBlock0Bias;
  for (const LayerName& n : kModelNames)
    if (name == in(n, naming)) return n.hf;
  std::smatch m;
  if (!std::regex_match(name, m, block_pattern(naming))) return std::nullopt;
  for (const LayerName& n : kLayerNames)
    if (m[2] == in(n, naming)) return block_prefix(T5Naming::HuggingFace, m[1]) + n.hf;
  return std::nullopt;
}

T5Naming t5_naming_of(const std::vector<NamedShape>& tensors) {
  const auto has = [&](const char* n) {
    return std::any_of(tensors.begin(), tensors.end(), [&](const NamedShape& s) { return s.name == n; });
  };
  if (has("token_embd.weight") && has("enc.blk.0.attn_q.weight")) return T5Naming::LlamaCpp;
  if (has("token_embedding.weight") && has("blocks.0.attn.q.weight")) return T5Naming::Wan;
  return T5Naming::HuggingFace;
}

std::vector<NamedShape> as_hf_t5_names(const std::vector<NamedShape>& tensors) {
  const T5Naming naming = t5_naming_of(tensors);
  if (naming == T5Naming::HuggingFace) return tensors;
  std::vector<NamedShape> out;
  for (const NamedShape& t : tensors)
    if (const auto hf = t5_name_from(t.name, naming)) out.push_back({*hf, t.shape});
  return out;
}

}  // namespace ditrun::models::text
