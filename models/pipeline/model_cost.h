// The planner's view of one model for one job (partition::ModelCost): per placement unit
// (prologue, each block, epilogue, named as the WeightStore names them) the bytes its weights
// occupy as stored, the GEMM class they compute in, its FLOPs and the activations it passes
// on, from the network (runtime::Model) and a source of stored weight sizes: an opened
// checkpoint, or a preset converted to a target encoding without any file.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "models/arch/model_config.h"
#include "models/pipeline/job_geometry.h"
#include "models/pipeline/model_source.h"
#include "models/quant/conversion.h"
#include "models/quant/weight_set.h"
#include "partition/cost_model.h"
#include "runtime/exec/model.h"

namespace ditrun::models {

// One weight as stored.
struct StoredWeight {
  uint64_t bytes = 0;           // stored bytes, scales included (what a WeightStore places)
  DType storage = DType::BF16;  // decides the GEMM rate class
};
// nullopt when there is no such weight (optional weights: the WeightStore skips them too).
using FindStoredWeight = std::function<std::optional<StoredWeight>(const std::string& name)>;

// The GEMM rate class of a storage type (partition/hardware_profile.h): "bf16" for f32, f16
// and bf16, "fp8" for float8, "gguf" for GGUF block types.
std::string weight_class(DType storage);

// Bytes of activations on the device: 2 for bf16 GPU activations, 4 for the CPU's f32 ones.
inline constexpr int kGpuActivationBytes = 2;
inline constexpr int kCpuActivationBytes = 4;

// Per unit: weight_bytes = the stored bytes of the unit's weights; weight_class = the class of
// most of its GEMM weight bytes (Linear and patch-embedding matrices; all its bytes when it
// has none); flops = (Block::flops - Block::attention_flops) x batch, attention_flops apart;
// activation_bytes = the state it passes on. For the epilogue that is the state too, an upper
// bound of the output it returns to the coordinator. step_activation_bytes =
// Model::activation_elements; micro_batches = 1 (a call crosses stages whole); steps = the job's.
partition::ModelCost model_cost(const arch::ModelConfig& config, const runtime::Model& network,
                                const FindStoredWeight& weights, const JobGeometry& job, int activation_element_bytes);

// The weights of an opened checkpoint.
FindStoredWeight checkpoint_weights(const quant::WeightSet& weights);
// The weights `ditrun synth --preset <config> --weights <target>` would write (from bf16
// sources, as synth converts them): the same conversion plan, byte for byte, no file.
FindStoredWeight converted_weights(const arch::ModelConfig& config, const quant::ConversionTarget& target);

// For `ditrun run`: the cost of an opened model (models::open_model) and its network for a job.
partition::ModelCost checkpoint_cost(const ModelSource& source, const runtime::Model& network, const JobGeometry& job,
                                     int activation_element_bytes);

}  // namespace ditrun::models
