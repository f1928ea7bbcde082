// A model of two experts with one architecture (Wan 2.2 A14B: a high-noise expert for the
// early steps, a low-noise one after a boundary), seen by the rest of the runtime as one
// network whose every unit holds both experts' weights, so that plans, pipelines, replicas,
// teams and the WeightStore need nothing new: a stage holding blocks 0..k holds them of both
// experts. Each call runs one expert, named by the network input `expert`; the prologue
// keeps the choice in the activation state, so every stage of a pipeline and every member
// of a team runs the same expert for that call.
//
// Weight names are the expert's own with a prefix ("high_noise/blocks.0.ffn.0.weight"), so
// one WeightStore finds both experts' tensors in their two checkpoints (expert_weight_source).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/exec/model.h"

namespace ditrun::runtime {

enum class Expert { high_noise, low_noise };

// The network input that names a call's expert: [1], 1 = high-noise, 0 = low-noise.
inline constexpr std::string_view kExpertInput = "expert";
HostTensor expert_input(Expert expert);

std::string_view expert_name(Expert expert);  // "high_noise", "low_noise"
std::optional<Expert> expert_from_name(std::string_view name);  // the inverse; nullopt for other names
// "high_noise/<name>"
std::string expert_weight_name(Expert expert, std::string_view name);
// The expert and the expert's own name of a pair's weight name; nullopt for other names.
struct ExpertWeightName {
  Expert expert;
  std::string name;
};
std::optional<ExpertWeightName> split_expert_weight_name(std::string_view name);

// The expert a call runs: from the network inputs (`expert`), or from the activation state
// the pair's prologue made; nullopt for a one-expert model's.
std::optional<Expert> expert_of(const HostTensors& inputs);
std::optional<Expert> expert_of(const ActivationState& state);

// The pair over `expert` (either expert's network: they share the architecture).
std::unique_ptr<Model> make_expert_pair(std::unique_ptr<Model> expert);

// The pair network, or nullptr for a one-expert model.
bool is_expert_pair(const Model& model);

}  // namespace ditrun::runtime
