#include "runtime/exec/expert_pair.h"

#include <fmt/format.h>

#include "runtime/core/error.h"

namespace ditrun::runtime {
namespace {

constexpr std::string_view kExpertInt = "expert";  // the state's copy of the call's expert

constexpr std::string_view kHighPrefix = "high_noise/";
constexpr std::string_view kLowPrefix = "low_noise/";

// One expert's weights, by the expert's own names, in a lookup holding both experts'.
class ExpertLookup final : public WeightLookup {
 public:
  ExpertLookup(const WeightLookup& both, Expert expert) : both_(both), expert_(expert) {}
  const DeviceWeight* find(std::string_view name) const override {
    return both_.find(expert_weight_name(expert_, name));
  }

 private:
  const WeightLookup& both_;
  Expert expert_;
};

// The call's expert, which the pair's prologue put in the state.
Expert state_expert(const ActivationState& state) {
  return state.integer(kExpertInt) == 1 ? Expert::high_noise : Expert::low_noise;
}

std::vector<std::string> both_experts(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  out.reserve(2 * names.size());
  for (Expert e : {Expert::high_noise, Expert::low_noise})
    for (const std::string& n : names) out.push_back(expert_weight_name(e, n));
  return out;
}

// A block of the pair: the expert's block, run with the weights of the state's expert. Its
// costs are one expert's (a call runs one); its weights are both experts'.
class PairBlock final : public Block {
 public:
  explicit PairBlock(const Block& expert) : expert_(expert) {}
  const std::string& name() const override { return expert_.name(); }
  std::vector<std::string> weight_names() const override { return both_experts(expert_.weight_names()); }
  double flops(const TokenCounts& t) const override { return expert_.flops(t); }
  double attention_flops(const TokenCounts& t) const override { return expert_.attention_flops(t); }
  double elementwise_elements(const TokenCounts& t) const override { return expert_.elementwise_elements(t); }
  double self_attention_elements(const TokenCounts& t) const override { return expert_.self_attention_elements(t); }
  void forward(Backend& backend, const WeightLookup& weights, ActivationState& state) const override {
    expert_.forward(backend, ExpertLookup(weights, state_expert(state)), state);
  }
  std::vector<std::pair<std::string, Tensor>> outputs(const ActivationState& state) const override {
    return expert_.outputs(state);
  }

 private:
  const Block& expert_;
};

class ExpertPair final : public Model {
 public:
  explicit ExpertPair(std::unique_ptr<Model> expert) : expert_(std::move(expert)) {
    for (const auto& b : expert_->blocks()) blocks_.push_back(std::make_unique<PairBlock>(*b));
  }
  const std::vector<std::unique_ptr<Block>>& blocks() const override { return blocks_; }
  std::vector<std::string> prologue_weight_names() const override {
    return both_experts(expert_->prologue_weight_names());
  }
  std::vector<std::string> epilogue_weight_names() const override {
    return both_experts(expert_->epilogue_weight_names());
  }
  ActivationState prologue(Backend& backend, const WeightLookup& weights, const HostTensors& inputs) const override {
    const auto it = inputs.find(kExpertInput);
    if (it == inputs.end() || it->second.data.size() != 1 || (it->second.data[0] != 0 && it->second.data[0] != 1))
      fail("model input '{}': a model of two experts needs it, [1] holding 1 (high-noise) or 0 (low-noise)",
           kExpertInput);
    const Expert expert = it->second.data[0] == 1 ? Expert::high_noise : Expert::low_noise;
    ActivationState state = expert_->prologue(backend, ExpertLookup(weights, expert), inputs);
    state.set_int(std::string(kExpertInt), expert == Expert::high_noise ? 1 : 0);
    return state;
  }
  HostTensor epilogue(Backend& backend, const WeightLookup& weights, ActivationState& state) const override {
    return expert_->epilogue(backend, ExpertLookup(weights, state_expert(state)), state);
  }
  TokenCounts tokens(const HostTensors& inputs) const override { return expert_->tokens(inputs); }
  double prologue_flops(const TokenCounts& t) const override { return expert_->prologue_flops(t); }
  double epilogue_flops(const TokenCounts& t) const override { return expert_->epilogue_flops(t); }
  int64_t activation_elements(const TokenCounts& t, int64_t batch) const override {
    return expert_->activation_elements(t, batch);
  }
  int64_t state_elements(const TokenCounts& t, int64_t batch) const override {
    return expert_->state_elements(t, batch);
  }
  StateLayout state_layout(const ActivationState& state) const override { return expert_->state_layout(state); }

 private:
  std::unique_ptr<Model> expert_;
  std::vector<std::unique_ptr<Block>> blocks_;
};

}  // namespace

HostTensor expert_input(Expert expert) {
  HostTensor t({1});
  t.data[0] = expert == Expert::high_noise ? 1.0f : 0.0f;
  return t;
}

std::optional<Expert> expert_of(const HostTensors& inputs) {
  const auto it = inputs.find(kExpertInput);
  if (it == inputs.end() || it->second.data.size() != 1) return std::nullopt;
  return it->second.data[0] == 1 ? Expert::high_noise : Expert::low_noise;
}

std::optional<Expert> expert_of(const ActivationState& state) {
  const auto it = state.ints().find(kExpertInt);
  if (it == state.ints().end()) return std::nullopt;
  return it->second == 1 ? Expert::high_noise : Expert::low_noise;
}

std::string_view expert_name(Expert expert) { return expert == Expert::high_noise ? "high_noise" : "low_noise"; }

std::optional<Expert> expert_from_name(std::string_view name) {
  if (name == expert_name(Expert::high_noise)) return Expert::high_noise;
  if (name == expert_name(Expert::low_noise)) return Expert::low_noise;
  return std::nullopt;
}

std::string expert_weight_name(Expert expert, std::string_view name) {
  return fmt::format("{}{}", expert == Expert::high_noise ? kHighPrefix : kLowPrefix, name);
}

std::optional<ExpertWeightName> split_expert_weight_name(std::string_view name) {
  if (name.starts_with(kHighPrefix)) return ExpertWeightName{Expert::high_noise, std::string(name.substr(kHighPrefix.size()))};
  if (name.starts_with(kLowPrefix)) return ExpertWeightName{Expert::low_noise, std::string(name.substr(kLowPrefix.size()))};
  return std::nullopt;
}

std::unique_ptr<Model> make_expert_pair(std::unique_ptr<Model> expert) {
  if (!expert) fail("make_expert_pair: no expert network");
  return std::make_unique<ExpertPair>(std::move(expert));
}

bool is_expert_pair(const Model& model) { return dynamic_cast<const ExpertPair*>(&model) != nullptr; }

}  // namespace ditrun::runtime
