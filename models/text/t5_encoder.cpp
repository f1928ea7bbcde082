#include "models/text/t5_encoder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "models/text/text_encoder_config.h"
#include "runtime/core/error.h"

namespace ditrun::models::text {

HostTensor ids_tensor(const std::vector<int64_t>& ids) {
  HostTensor t(Shape{1, int64_t(ids.size())});
  std::transform(ids.begin(), ids.end(), t.data.begin(), [](int64_t id) { return float(id); });
  return t;
}
namespace {

std::string block(int64_t i) { return fmt::format("encoder.block.{}.layer.", i); }

}  // namespace

T5Params t5_params_from_json(const nlohmann::json& j, const std::string& source) {
  T5Params p;
  if (!j.is_object()) fail("{}: not a JSON object", source);
  p.architecture = j.value("architecture", "");
  if (p.architecture != "t5" && p.architecture != "umt5") fail("{}: architecture '{}' is not t5 or umt5", source, p.architecture);
  const nlohmann::json params = j.value("params", nlohmann::json::object());
  const auto read = [&](const char* key, auto& out) {
    if (!params.contains(key)) return;
    try {
      out = params.at(key).get<std::decay_t<decltype(out)>>();
    } catch (const nlohmann::json::exception&) {
      fail("{}: params.{} has the wrong type", source, key);
    }
  };
  read("vocab", p.vocab);
  read("dim", p.dim);
  p.dim_attn = p.dim;
  read("dim_attn", p.dim_attn);
  read("dim_ffn", p.dim_ffn);
  read("num_heads", p.num_heads);
  read("num_layers", p.num_layers);
  read("num_buckets", p.num_buckets);
  p.shared_pos = p.architecture == "t5";
  read("shared_pos", p.shared_pos);
  p.max_distance = j.value("hf_config", nlohmann::json::object()).value("relative_attention_max_distance", int64_t(128));
  if (p.dim < 1 || p.num_heads < 1 || p.dim_attn % p.num_heads != 0 || p.num_layers < 1 || p.num_buckets < 4)
    fail("{}: params: dim, heads (dividing dim_attn), layers and buckets must be positive", source);
  return p;
}

bool looks_like_t5(const std::vector<NamedShape>& tensors) {
  if (t5_naming_of(tensors) != T5Naming::HuggingFace) return true;
  const auto& t = tensors;
  const auto has = [&](const std::string& n) { return std::any_of(t.begin(), t.end(), [&](const auto& s) { return s.name == n; }); };
  return has("shared.weight") && has("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
}

T5Params detect_t5(const std::vector<NamedShape>& tensors, const std::string& source) {
  std::map<std::string, formats::Shape> by_name;
  for (const auto& s : as_hf_t5_names(tensors)) by_name.emplace(s.name, s.shape);
  const auto shape = [&](const std::string& n) -> const formats::Shape& {
    const auto it = by_name.find(n);
    if (it == by_name.end() || it->second.size() != 2) fail("{}: cannot detect the T5 encoder: no 2-D tensor '{}'", source, n);
    return it->second;
  };
  T5Params p;
  p.vocab = shape("shared.weight")[0];
  p.dim = shape("shared.weight")[1];
  p.dim_attn = shape(block(0) + "0.SelfAttention.q.weight")[0];
  p.dim_ffn = shape(block(0) + "1.DenseReluDense.wi_0.weight")[0];
  p.num_buckets = shape(block(0) + "0.SelfAttention.relative_attention_bias.weight")[0];
  p.num_heads = shape(block(0) + "0.SelfAttention.relative_attention_bias.weight")[1];
  p.num_layers = 0;
  while (by_name.count(block(p.num_layers) + "0.SelfAttention.q.weight")) ++p.num_layers;
  p.shared_pos = !by_name.count(block(1) + "0.SelfAttention.relative_attention_bias.weight");
  p.architecture = p.shared_pos ? "t5" : "umt5";
  return p;
}

int64_t t5_bucket(int64_t i, int64_t j, int64_t num_buckets, int64_t max_distance) {
  const int64_t half = num_buckets / 2, max_exact = half / 2;
  const int64_t r = j - i, offset = r > 0 ? half : 0, n = std::abs(r);
  if (n < max_exact) return offset + n;
  // float32, as torch evaluates log(n / max_exact) / log(max_distance / max_exact) · (half − max_exact)
  const float large = std::log(float(n) / float(max_exact)) / float(std::log(double(max_distance) / double(max_exact))) *
                      float(half - max_exact);
  return offset + std::min<int64_t>(max_exact + int64_t(large), half - 1);
}

T5Encoder::T5Encoder(T5Params params, runtime::Backend& backend, const quant::WeightSet& weights, std::string source)
    : p_(std::move(params)),
      backend_(backend),
      weights_(backend, weights, std::move(source), "T5") {
  std::vector<NamedShape> names;
  for (const Weight& w : weights.weights()) names.push_back({w.name, w.shape});
  naming_ = t5_naming_of(names);
  if (naming_ != T5Naming::HuggingFace)
    for (const NamedShape& n : names)
      if (const auto hf = t5_name_from(n.name, naming_)) stored_names_.emplace(*hf, n.name);
}

std::string T5Encoder::stored(const std::string& hf_name) const {
  const auto it = stored_names_.find(hf_name);
  return it == stored_names_.end() ? hf_name : it->second;
}

Tensor T5Encoder::position_bias(int64_t block_index, int64_t length) {
  const Weight* table = weights_.find(stored(block(block_index) + "0.SelfAttention.relative_attention_bias.weight"));
  if (!table) fail("{}: T5 block {} has no relative_attention_bias", weights_.source(), block_index);
  const std::vector<float> t = table->dequantize();  // [buckets, heads]
  const int64_t heads = p_.num_heads;
  if (int64_t(t.size()) != p_.num_buckets * heads)
    fail("{}: relative_attention_bias of block {} is not [{}, {}]", weights_.source(), block_index, p_.num_buckets, heads);
  std::vector<float> bias(size_t(heads * length * length));
  for (int64_t i = 0; i < length; ++i)
    for (int64_t j = 0; j < length; ++j) {
      const int64_t bucket = t5_bucket(i, j, p_.num_buckets, p_.max_distance);
      for (int64_t h = 0; h < heads; ++h) bias[size_t((h * length + i) * length + j)] = t[size_t(bucket * heads + h)];
    }
  Tensor out = backend_.empty(Shape{1, heads * length, length});
  backend_.upload(bias, out, backend_.compute_stream());
  return out;
}

HostTensor T5Encoder::encode(const HostTensor& ids, const std::vector<int64_t>& lengths, const EncoderSink& sink) {
  if (ids.shape.size() != 2) fail("{}: T5 ids must be [B, L], got {}", weights_.source(), shape_string(ids.shape));
  const int64_t b = ids.shape[0], l = ids.shape[1], d = p_.dim;
  if (!lengths.empty() && int64_t(lengths.size()) != b)
    fail("{}: {} lengths for {} prompts", weights_.source(), lengths.size(), b);
  Tensor x = backend_.empty(Shape{b, l, d});
  backend_.upload(weights_.embedding_rows(stored("shared.weight"), ids.data), x, backend_.compute_stream());

  const float eps = float(p_.eps);
  Tensor bias = position_bias(0, l);
  Tensor h = backend_.empty(Shape{b, l, d});
  Tensor q = backend_.empty(Shape{b, l, p_.dim_attn}), k = backend_.empty(Shape{b, l, p_.dim_attn}),
         v = backend_.empty(Shape{b, l, p_.dim_attn}), attended = backend_.empty(Shape{b, l, p_.dim_attn});
  Tensor gate = backend_.empty(Shape{b, l, p_.dim_ffn}), lin = backend_.empty(Shape{b, l, p_.dim_ffn});
  Tensor delta = backend_.empty(Shape{b, l, d});
  // The weights of block n, in the file's names (streamed: prefetched one block ahead).
  const auto block_weights = [&](int64_t n) {
    std::vector<std::string> names;
    for (const char* w : {"0.layer_norm.weight", "0.SelfAttention.q.weight", "0.SelfAttention.k.weight",
                          "0.SelfAttention.v.weight", "0.SelfAttention.o.weight", "1.layer_norm.weight",
                          "1.DenseReluDense.wi_0.weight", "1.DenseReluDense.wi_1.weight", "1.DenseReluDense.wo.weight"})
      names.push_back(stored(block(n) + w));
    return names;
  };
  if (streamed_ && !copy_stream_) copy_stream_ = backend_.create_stream();
  if (streamed_) weights_.prefetch(block_weights(0), *copy_stream_);
  for (int64_t n = 0; n < p_.num_layers; ++n) {
    const std::string pre = block(n);
    if (streamed_ && n + 1 < p_.num_layers) weights_.prefetch(block_weights(n + 1), *copy_stream_);
    if (!p_.shared_pos && n > 0) bias = position_bias(n, l);
    backend_.rms_norm(x, h, weight(pre + "0.layer_norm.weight"), d, eps);
    backend_.linear(h, weight(pre + "0.SelfAttention.q.weight"), nullptr, q);
    backend_.linear(h, weight(pre + "0.SelfAttention.k.weight"), nullptr, k);
    backend_.linear(h, weight(pre + "0.SelfAttention.v.weight"), nullptr, v);
    backend_.attention_biased(q, k, v, attended, p_.num_heads, 1.0f, bias, lengths);  // T5: no 1/sqrt(d_kv)
    backend_.linear(attended, weight(pre + "0.SelfAttention.o.weight"), nullptr, delta);
    backend_.add(x, delta, x);
    backend_.rms_norm(x, h, weight(pre + "1.layer_norm.weight"), d, eps);
    backend_.linear_gelu(h, weight(pre + "1.DenseReluDense.wi_0.weight"), nullptr, gate);
    backend_.linear(h, weight(pre + "1.DenseReluDense.wi_1.weight"), nullptr, lin);
    backend_.mul(gate, lin, gate);
    backend_.linear(gate, weight(pre + "1.DenseReluDense.wo.weight"), nullptr, delta);
    backend_.add(x, delta, x);
    if (streamed_) weights_.release(t5_block_prefix(naming_, n));
    if (sink) {
      HostTensor t(Shape{b, l, d});
      backend_.download(x, t.data, backend_.compute_stream());
      sink(fmt::format("blocks.{}.out", n), t);
    }
  }
  backend_.rms_norm(x, h, weight("encoder.final_layer_norm.weight"), d, eps);
  HostTensor out(Shape{b, l, d});
  backend_.download(h, out.data, backend_.compute_stream());
  return out;
}

}  // namespace ditrun::models::text
