// The T5 v1.1 encoder (Flux's T5-XXL) and umT5 (Wan's), on the Backend, under Hugging Face's
// names (`shared.weight`, `encoder.block.N.layer.0.SelfAttention.q.weight`, ...: ComfyUI's
// t5xxl_* / umt5_xxl_* files). T5 v1.1 takes one relative-position bias table from block 0 for
// every block; umT5 has one per block.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/arch/detect.h"
#include "models/common/loaded_weights.h"
#include "models/quant/weight_set.h"
#include "runtime/backend/backend.h"

namespace ditrun::models::text {

// The namings T5 files use (text_encoder_config.h maps them to Hugging Face's).
enum class T5Naming { HuggingFace, LlamaCpp, Wan };

struct T5Params {
  std::string architecture = "t5";  // "t5" or "umt5"
  int64_t vocab = 32128, dim = 4096, dim_attn = 4096, dim_ffn = 10240, num_heads = 64, num_layers = 24;
  int64_t num_buckets = 32, max_distance = 128;
  bool shared_pos = true;  // T5 v1.1: block 0's table serves every block; umT5: false
  double eps = 1e-6;
  bool operator==(const T5Params&) const = default;
};

// From the reference configs' schema: `architecture` t5|umt5, `params` in Wan's T5Encoder
// names (vocab, dim, dim_attn, dim_ffn, num_heads, num_layers, num_buckets, shared_pos), and
// `hf_config.relative_attention_max_distance`. Fails naming `source` and the field.
T5Params t5_params_from_json(const nlohmann::json& j, const std::string& source);

using arch::NamedShape;  // a tensor's name and PyTorch shape
// Whether the names are a T5 encoder's, and its params from the shapes (heads from the bias
// table; umT5 when block 1 has a table of its own).
bool looks_like_t5(const std::vector<NamedShape>& tensors);
T5Params detect_t5(const std::vector<NamedShape>& tensors, const std::string& source);

// The relative-position bucket of query i and key j (bidirectional, as the encoder uses it),
// with the log in float32 as the reference code evaluates it.
int64_t t5_bucket(int64_t i, int64_t j, int64_t num_buckets, int64_t max_distance);

using EncoderSink = std::function<void(const std::string& name, const HostTensor& t)>;

// One prompt's token ids as the encoders (T5, CLIP) take them: [1, n], the ids as values.
HostTensor ids_tensor(const std::vector<int64_t>& ids);

class T5Encoder {
 public:
  T5Encoder(T5Params params, runtime::Backend& backend, const quant::WeightSet& weights, std::string source);
  // ids [B, L] (token ids as values); lengths (one per item, or empty): keys at and after an
  // item's length are masked (Wan's way; Flux runs without). Returns [B, L, dim]; `sink`
  // receives `blocks.N.out` (the residual stream after block N).
  HostTensor encode(const HostTensor& ids, const std::vector<int64_t>& lengths, const EncoderSink& sink = {});
  const T5Params& params() const { return p_; }
  // Streamed: each block's weights are dropped after the block, and the next block's are
  // loaded on a copy stream while it computes, so the encoder holds two blocks at a time (the
  // placement of a large encoder on a GPU without room for all of it). Default: loaded on
  // first use and kept.
  void set_streamed(bool streamed) { streamed_ = streamed; }

 private:
  // Hugging Face's name as the file spells it (text_encoder_config.h: T5Naming).
  std::string stored(const std::string& hf_name) const;
  const runtime::DeviceWeight& weight(const std::string& hf_name) { return weights_.get(stored(hf_name)); }
  Tensor position_bias(int64_t block, int64_t length);

  T5Params p_;
  runtime::Backend& backend_;
  LoadedWeights weights_;
  T5Naming naming_ = T5Naming::HuggingFace;
  std::map<std::string, std::string> stored_names_;  // Hugging Face's name → the file's, when they differ
  bool streamed_ = false;
  std::optional<runtime::Stream> copy_stream_;  // streamed: where the next block's weights load
};

}  // namespace ditrun::models::text
