#include "models/pipeline/model_cost.h"

#include <map>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "models/arch/layout.h"
#include "runtime/core/error.h"
#include "runtime/exec/expert_pair.h"
#include "runtime/exec/weight_store.h"

namespace ditrun::models {
namespace {

// Matrices a GEMM reads: they decide which rate a unit computes at.
std::unordered_set<std::string> gemm_weight_names(const arch::ModelConfig& config) {
  std::unordered_set<std::string> names;
  for (const arch::TensorSpec& t : arch::tensor_layout(config))
    if (t.role == arch::TensorRole::LinearWeight || t.role == arch::TensorRole::PatchEmbed) names.insert(t.name);
  return names;
}

// The class holding the most bytes (ties: the first in name order, so the result is stable).
std::string majority_class(const std::map<std::string, uint64_t>& bytes_by_class) {
  std::string best = "bf16";
  uint64_t most = 0;
  for (const auto& [cls, bytes] : bytes_by_class)
    if (bytes > most) most = bytes, best = cls;
  return best;
}

uint64_t to_bytes(int64_t elements, int element_bytes, std::string_view what) {
  if (elements < 0) fail("model cost: negative {} ({} elements)", what, elements);
  return uint64_t(elements) * uint64_t(element_bytes);
}

}  // namespace

std::string weight_class(DType storage) {
  switch (dtype_info(storage).kind) {
    case DTypeKind::Float: return "bf16";
    case DTypeKind::Float8: return "fp8";
    case DTypeKind::Quantized: return "gguf";
    case DTypeKind::Integer: break;
  }
  fail("weight storage type {} has no GEMM class (integer tensors are not weights)", dtype_name(storage));
}

partition::ModelCost model_cost(const arch::ModelConfig& config, const runtime::Model& network,
                                const FindStoredWeight& weights, const JobGeometry& job, int activation_element_bytes) {
  if (activation_element_bytes < 1) fail("model cost: activation element size {} bytes", activation_element_bytes);
  if (job.batch < 1) fail("model cost: batch {} (at least 1)", job.batch);
  const runtime::TokenCounts& tokens = job.tokens;
  const double batch = double(job.batch);
  const uint64_t state_bytes =
      to_bytes(network.state_elements(tokens, job.batch), activation_element_bytes, "activation state");
  const std::unordered_set<std::string> gemm = gemm_weight_names(config);

  partition::ModelCost cost;
  const auto& blocks = network.blocks();
  size_t block_index = 0;
  for (const runtime::UnitWeights& unit : runtime::model_units(network)) {
    partition::BlockCost b;
    b.name = unit.name;
    std::map<std::string, uint64_t> gemm_bytes, all_bytes;
    for (const std::string& name : unit.weights) {
      const std::optional<StoredWeight> w = weights(name);
      if (!w) continue;
      b.weight_bytes += w->bytes;
      const std::string cls = weight_class(w->storage);
      all_bytes[cls] += w->bytes;
      // An expert pair's weights carry their expert's prefix (runtime/exec/expert_pair.h).
      const auto expert = runtime::split_expert_weight_name(name);
      if (gemm.count(expert ? expert->name : name)) gemm_bytes[cls] += w->bytes;
    }
    b.weight_class = majority_class(gemm_bytes.empty() ? all_bytes : gemm_bytes);
    if (unit.name == runtime::kPrologueUnit) {
      b.flops = network.prologue_flops(tokens) * batch;
    } else if (unit.name == runtime::kEpilogueUnit) {
      b.flops = network.epilogue_flops(tokens) * batch;
    } else {
      const runtime::Block& block = *blocks.at(block_index++);
      b.attention_flops = block.attention_flops(tokens) * batch;
      b.flops = block.flops(tokens) * batch - b.attention_flops;
      b.elementwise_bytes = block.elementwise_elements(tokens) * batch * double(activation_element_bytes);
      // The exchange stages f32 values through the host whatever the activation type.
      b.exchange_bytes = block.self_attention_elements(tokens) * batch * double(sizeof(float));
    }
    b.activation_bytes = state_bytes;
    cost.blocks.push_back(std::move(b));
  }
  cost.step_activation_bytes =
      to_bytes(network.activation_elements(tokens, job.batch), activation_element_bytes, "activation peak");
  // The runner passes a whole network call (both CFG halves) from stage to stage: one
  // micro-batch per job step. Pipelines fill up with other jobs instead (solver.h, "rate").
  cost.micro_batches = 1;
  cost.steps = job.steps;
  partition::validate(cost);
  return cost;
}

FindStoredWeight checkpoint_weights(const quant::WeightSet& weights) {
  return [&weights](const std::string& name) -> std::optional<StoredWeight> {
    const Weight* w = weights.find(name);
    if (!w) return std::nullopt;
    return StoredWeight{w->stored_bytes(), w->storage};
  };
}

FindStoredWeight converted_weights(const arch::ModelConfig& config, const quant::ConversionTarget& target) {
  auto table = std::make_shared<std::unordered_map<std::string, StoredWeight>>();
  for (const arch::TensorSpec& t : arch::tensor_layout(config)) {
    const std::string unit = arch::placement_unit(config, t.name);
    const bool inside_block = unit != runtime::kPrologueUnit && unit != runtime::kEpilogueUnit;
    const quant::TensorConversion conv = quant::plan_conversion(target, config.family, t.name, t.shape, DType::BF16, inside_block);
    StoredWeight w{0, conv.storage};
    for (const quant::OutputTensor& o : quant::conversion_outputs(conv, t.name, t.shape, DType::BF16, target.block))
      w.bytes += uint64_t(dtype_bytes(o.dtype, shape_numel(o.shape), o.name));
    table->emplace(t.name, w);
  }
  return [table](const std::string& name) -> std::optional<StoredWeight> {
    auto it = table->find(name);
    if (it == table->end()) return std::nullopt;
    return it->second;
  };
}

partition::ModelCost checkpoint_cost(const ModelSource& source, const runtime::Model& network, const JobGeometry& job,
                                     int activation_element_bytes) {
  if (!source.weights) fail("model cost: the model source has no weights");
  return model_cost(source.config, network, checkpoint_weights(*source.weights), job, activation_element_bytes);
}

}  // namespace ditrun::models
