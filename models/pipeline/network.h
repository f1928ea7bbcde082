// From a model config to the runnable network (runtime::Model), and the checks that the
// checkpoint holds every weight it reads.
#pragma once

#include <memory>

#include "models/arch/model_config.h"
#include "models/quant/weight_set.h"
#include "runtime/exec/model.h"

namespace ditrun::models {

// Flux dev/schnell and Wan text-to-video; other families and variants fail with a clear
// "not supported yet" naming them. A config of two experts (Wan 2.2 A14B) gives their pair
// (runtime/exec/expert_pair.h).
std::unique_ptr<runtime::Model> make_network(const arch::ModelConfig& config);

// Fails naming the file, the first missing tensor (and how many are missing) when the
// checkpoint lacks a weight the network reads, and on weights whose encoding ditrun cannot
// decode yet.
void check_weights_present(const runtime::Model& network, const quant::WeightSet& weights);

}  // namespace ditrun::models
