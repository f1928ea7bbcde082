#include "models/text/clip_text_encoder.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "runtime/core/error.h"

namespace ditrun::models::text {
namespace {

constexpr const char* kTokens = "text_model.embeddings.token_embedding.weight";
constexpr const char* kPositions = "text_model.embeddings.position_embedding.weight";
std::string layer(int64_t n) { return fmt::format("text_model.encoder.layers.{}.", n); }

HostTensor host_of(runtime::Backend& backend, const Tensor& t) {
  HostTensor out(t.shape());
  backend.download(t, out.data, backend.compute_stream());
  return out;
}

}  // namespace

ClipTextParams clip_text_params_from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object() || j.value("architecture", "") != "clip-text") fail("{}: architecture is not clip-text", source);
  const nlohmann::json params = j.value("params", nlohmann::json::object());
  ClipTextParams p;
  try {
    p.vocab_size = params.value("vocab_size", p.vocab_size);
    p.hidden_size = params.value("hidden_size", p.hidden_size);
    p.num_heads = params.value("num_attention_heads", p.num_heads);
    p.num_layers = params.value("num_hidden_layers", p.num_layers);
    p.intermediate_size = params.value("intermediate_size", p.intermediate_size);
    p.max_positions = params.value("max_position_embeddings", p.max_positions);
    p.eps = params.value("layer_norm_eps", p.eps);
    p.hidden_act = params.value("hidden_act", p.hidden_act);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: params: {}", source, e.what());
  }
  if (p.hidden_size < 1 || p.num_heads < 1 || p.hidden_size % p.num_heads != 0 || p.num_layers < 2)
    fail("{}: params: hidden_size must split into num_attention_heads, and num_hidden_layers be at least 2", source);
  if (p.hidden_act != "quick_gelu" && p.hidden_act != "gelu")
    fail("{}: params.hidden_act: '{}' (ditrun runs quick_gelu, CLIP-L's, and gelu, CLIP-G's)", source, p.hidden_act);
  return p;
}

bool looks_like_clip_text(const std::vector<NamedShape>& t) {
  return std::any_of(t.begin(), t.end(), [](const auto& s) { return s.name == kTokens; });
}

ClipTextParams detect_clip_text(const std::vector<NamedShape>& t, const std::string& source) {
  std::map<std::string, formats::Shape> by_name;
  for (const auto& s : t) by_name.emplace(s.name, s.shape);
  const auto shape = [&](const std::string& n) -> const formats::Shape& {
    const auto it = by_name.find(n);
    if (it == by_name.end() || it->second.size() != 2) fail("{}: cannot detect the CLIP text encoder: no 2-D '{}'", source, n);
    return it->second;
  };
  ClipTextParams p;
  p.vocab_size = shape(kTokens)[0];
  p.hidden_size = shape(kTokens)[1];
  p.max_positions = shape(kPositions)[0];
  p.intermediate_size = shape(layer(0) + "mlp.fc1.weight")[0];
  p.num_layers = 0;
  while (by_name.count(layer(p.num_layers) + "self_attn.q_proj.weight")) ++p.num_layers;
  // Every released CLIP text tower has 64-wide heads; the shapes cannot tell otherwise.
  if (p.hidden_size % 64 != 0)
    fail("{}: CLIP width {} is not a multiple of the released 64-wide heads: give a config (--config) with "
         "num_attention_heads",
         source, p.hidden_size);
  p.num_heads = p.hidden_size / 64;
  if (p.hidden_size == 1280) p.hidden_act = "gelu";  // OpenCLIP ViT-bigG (SDXL's and SD3's CLIP-G)
  return p;
}

ClipTextEncoder::ClipTextEncoder(ClipTextParams params, runtime::Backend& backend, const quant::WeightSet& weights,
                                 std::string source)
    : p_(std::move(params)), backend_(backend), weights_(backend, weights, std::move(source), "CLIP") {}

void ClipTextEncoder::layer_norm(const Tensor& x, Tensor& y, const std::string& name) {
  backend_.layer_norm(x, y, float(p_.eps), &weight(name + ".weight"), &weight(name + ".bias"));
}

ClipTextOutputs ClipTextEncoder::encode(const HostTensor& ids, const EncoderSink& sink) {
  if (ids.shape.size() != 2 || ids.shape[1] > p_.max_positions)
    fail("{}: CLIP ids must be [B, L ≤ {}], got {}", weights_.source(), p_.max_positions, shape_string(ids.shape));
  const int64_t b = ids.shape[0], l = ids.shape[1], c = p_.hidden_size, heads = p_.num_heads;
  // Token rows plus the position rows 0..L−1.
  std::vector<float> rows = weights_.embedding_rows(kTokens, ids.data);
  std::vector<float> position_ids(static_cast<size_t>(l));
  for (int64_t i = 0; i < l; ++i) position_ids[size_t(i)] = float(i);
  const std::vector<float> pos = weights_.embedding_rows(kPositions, position_ids);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] += pos[i % pos.size()];
  ClipTextOutputs out;
  for (int64_t item = 0; item < b; ++item) {
    const auto first = ids.data.begin() + item * l;
    out.pooled_index.push_back(std::max_element(first, first + l) - first);  // the first maximal id
  }
  Tensor x = backend_.empty(Shape{b, l, c});
  backend_.upload(rows, x, backend_.compute_stream());
  // Causal: key j > query i excluded, the same for every head and item.
  std::vector<float> causal(size_t(heads * l * l), 0.0f);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < l; ++i)
      for (int64_t j = i + 1; j < l; ++j) causal[size_t((h * l + i) * l + j)] = -std::numeric_limits<float>::infinity();
  Tensor mask = backend_.empty(Shape{1, heads * l, l});
  backend_.upload(causal, mask, backend_.compute_stream());

  Tensor h = backend_.empty(Shape{b, l, c}), q = backend_.empty(Shape{b, l, c}), k = backend_.empty(Shape{b, l, c}),
         v = backend_.empty(Shape{b, l, c}), attended = backend_.empty(Shape{b, l, c}), delta = backend_.empty(Shape{b, l, c});
  Tensor mlp = backend_.empty(Shape{b, l, p_.intermediate_size});
  for (int64_t n = 0; n < p_.num_layers; ++n) {
    const std::string pre = layer(n);
    layer_norm(x, h, pre + "layer_norm1");
    backend_.linear(h, weight(pre + "self_attn.q_proj.weight"), &weight(pre + "self_attn.q_proj.bias"), q);
    backend_.linear(h, weight(pre + "self_attn.k_proj.weight"), &weight(pre + "self_attn.k_proj.bias"), k);
    backend_.linear(h, weight(pre + "self_attn.v_proj.weight"), &weight(pre + "self_attn.v_proj.bias"), v);
    backend_.attention_biased(q, k, v, attended, heads, 0.0f, mask, {});  // scale 0: 1/sqrt(head dim)
    backend_.linear(attended, weight(pre + "self_attn.out_proj.weight"), &weight(pre + "self_attn.out_proj.bias"), delta);
    backend_.add(x, delta, x);
    layer_norm(x, h, pre + "layer_norm2");
    backend_.linear(h, weight(pre + "mlp.fc1.weight"), &weight(pre + "mlp.fc1.bias"), mlp);
    if (p_.hidden_act == "gelu") backend_.gelu(mlp, mlp);
    else backend_.quick_gelu(mlp, mlp);
    backend_.linear(mlp, weight(pre + "mlp.fc2.weight"), &weight(pre + "mlp.fc2.bias"), delta);
    backend_.add(x, delta, x);
    if (streamed_) weights_.release(pre);
    if (sink || n == p_.num_layers - 2) {
      HostTensor t = host_of(backend_, x);
      if (n == p_.num_layers - 2) {
        out.penultimate = t;
        layer_norm(x, h, "text_model.final_layer_norm");
        out.penultimate_normed = host_of(backend_, h);
      }
      if (sink) sink(fmt::format("layers.{}.out", n), t);
    }
  }
  layer_norm(x, h, "text_model.final_layer_norm");
  out.last = host_of(backend_, h);
  out.pooled = HostTensor(Shape{b, c});
  for (int64_t item = 0; item < b; ++item)
    std::copy_n(out.last.data.begin() + (item * l + out.pooled_index[size_t(item)]) * c, c, out.pooled.data.begin() + item * c);
  if (const Weight* projection = weights_.find("text_projection.weight")) {
    Tensor pooled = backend_.empty(Shape{b, 1, c});
    backend_.upload(out.pooled.data, pooled, backend_.compute_stream());
    Tensor projected = backend_.empty(Shape{b, 1, projection->rows()});
    backend_.linear(pooled, weight("text_projection.weight"), nullptr, projected);
    out.pooled_projected = host_of(backend_, projected);
    out.pooled_projected.shape = {b, projection->rows()};
  }
  return out;
}

}  // namespace ditrun::models::text
