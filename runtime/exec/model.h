// What the runtime knows of a diffusion transformer: a prologue, a list of blocks and an
// epilogue, each reading its weights by name and passing a small set of named activations on.
// The models (models/flux, models/wan, ...) implement these; the executor, the planner and
// the transports see only this.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/backend/backend.h"

namespace ditrun::runtime {

class SequenceParallel;

// Host tensors at a model's boundary, named as in the reference io files without "in."
// (Flux: img, img_ids, txt, txt_ids, y, timesteps, guidance; Wan: x, t, context).
using HostTensors = std::map<std::string, HostTensor, std::less<>>;

// The activations between blocks: named tensors (what a Channel sends between pipeline
// stages) plus integer facts about them (token counts, grid sizes).
class ActivationState {
 public:
  void set(const std::string& name, Tensor t) { tensors_[name] = std::move(t); }
  const Tensor& at(std::string_view name) const;
  bool has(std::string_view name) const { return tensors_.find(name) != tensors_.end(); }
  const std::map<std::string, Tensor, std::less<>>& tensors() const { return tensors_; }

  void set_int(const std::string& name, int64_t v) { ints_[name] = v; }
  int64_t integer(std::string_view name) const;
  const std::map<std::string, int64_t, std::less<>>& ints() const { return ints_; }

  // A text mask over the prefix rows of the joint sequence (Qwen-Image's padded prompts):
  // item b's first keys[b] of the `rows` prefix rows are real and the rest padding, which
  // attention must not use as keys (the padded rows are still computed as queries). Kept as
  // ints ("prefix_rows", "prefix_keys.<b>"), so it travels with the state between ranks.
  // No mask (every row real) when never set or when every item's keys cover its rows.
  void set_prefix_mask(int64_t rows, std::span<const int64_t> keys);
  void clear_prefix_mask();
  // Per item the real prefix rows; empty when no row is padding.
  std::vector<int64_t> prefix_keys() const;
  // The prefix rows the mask covers (0 without a mask).
  int64_t prefix_mask_rows() const;

  // While the state's tokens are split over a sequence-parallel group: the group, whose
  // attention the blocks call (self_attention in sequence_parallel.h); null otherwise.
  SequenceParallel* sequence() const { return sequence_; }
  void set_sequence(SequenceParallel* group) { sequence_ = group; }

 private:
  std::map<std::string, Tensor, std::less<>> tensors_;
  std::map<std::string, int64_t, std::less<>> ints_;
  SequenceParallel* sequence_ = nullptr;
};

// How the state between blocks divides over the ranks that share one job.
//  - Sequence parallelism splits the token rows of `token_tensors` ([B, prefix + tokens, ...],
//    dim 1): every rank keeps the `prefix` rows whole (Flux's text tokens, which join the
//    image tokens in attention) and a contiguous share of the `tokens` rows; `tokens_int`
//    names the state integer that counts those rows ("" when none), set to the local count.
//  - CFG parallelism splits `batch_tensors` ([B, ...], dim 0) by batch item: the cond and
//    uncond halves of a guided step on different ranks.
// Tensors in neither list are replicated (the timestep vectors, Wan's text context).
struct StateLayout {
  std::vector<std::string> token_tensors;
  int64_t prefix = 0;
  int64_t tokens = 0;
  std::string tokens_int;
  std::vector<std::string> batch_tensors;
};

// Weights by name, already on the backend that runs the op.
class WeightLookup {
 public:
  virtual ~WeightLookup() = default;
  virtual const DeviceWeight* find(std::string_view name) const = 0;
  const DeviceWeight& at(std::string_view name) const;  // fails naming the tensor
};

// Token counts a block's cost depends on, per batch item.
struct TokenCounts {
  int64_t image = 0;  // latent patches (Flux img tokens, Wan video tokens)
  int64_t text = 0;   // conditioning tokens (Flux txt, Wan context after padding)
};

class Block {
 public:
  virtual ~Block() = default;
  virtual const std::string& name() const = 0;  // "double_blocks.3": its weights' prefix
  virtual std::vector<std::string> weight_names() const = 0;
  // Floating-point operations of one forward for one batch item (GEMMs and attention).
  virtual double flops(const TokenCounts& tokens) const = 0;
  // The part of flops() spent in attention (q·kᵀ and p·v): it reads no weights, so the
  // planner prices it at the attention rate whatever the weights' storage type.
  virtual double attention_flops(const TokenCounts& tokens) const = 0;
  // Activation elements one forward of one batch item reads and writes outside GEMMs and
  // attention (norms, modulation, RoPE, activations, residuals): their time is the planner's
  // elementwise term, priced at the device's elementwise rate. Vectors ([B, 1, C]) are left out.
  virtual double elementwise_elements(const TokenCounts& tokens) const = 0;
  // Elements of self-attention's q, k, v and output over the whole sequence, for one batch
  // item: what a sequence-parallel exchange moves (the planner prices it; 0 without
  // self-attention).
  virtual double self_attention_elements(const TokenCounts& tokens) const = 0;
  virtual void forward(Backend& backend, const WeightLookup& weights, ActivationState& state) const = 0;
  // The tensors the reference implementations record after this block, by their names in
  // the reference io files ("double_blocks.0.out.img", "blocks.3.out", ...).
  virtual std::vector<std::pair<std::string, Tensor>> outputs(const ActivationState& state) const = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const std::vector<std::unique_ptr<Block>>& blocks() const = 0;
  virtual std::vector<std::string> prologue_weight_names() const = 0;
  virtual std::vector<std::string> epilogue_weight_names() const = 0;
  // Checks the inputs (names, shapes) and uploads them into the first activation state.
  virtual ActivationState prologue(Backend& backend, const WeightLookup& weights, const HostTensors& inputs) const = 0;
  // The model output in the reference layout (Flux [B, L_img, 64]; Wan [B, C, F, H, W]).
  virtual HostTensor epilogue(Backend& backend, const WeightLookup& weights, ActivationState& state) const = 0;
  virtual TokenCounts tokens(const HostTensors& inputs) const = 0;
  virtual double prologue_flops(const TokenCounts& tokens) const = 0;
  virtual double epilogue_flops(const TokenCounts& tokens) const = 0;
  // Activation memory of one forward of `batch` items, in elements of the backend's activation
  // dtype: the most that is live at once through Backend::empty / zeros / dequantize (the
  // state between blocks, the inputs' uploads and the largest set of temporaries of the
  // prologue, any block or the epilogue). An upper bound of what the code allocates, so a plan
  // can reserve it; kernel scratch outside the backend's allocator is not included.
  virtual int64_t activation_elements(const TokenCounts& tokens, int64_t batch) const = 0;
  // Elements of the activation state between blocks: what a pipeline stage boundary sends.
  virtual int64_t state_elements(const TokenCounts& tokens, int64_t batch) const = 0;
  // The layout of a state between blocks (any block boundary), for sequence and CFG parallelism.
  virtual StateLayout state_layout(const ActivationState& state) const = 0;
};

}  // namespace ditrun::runtime
