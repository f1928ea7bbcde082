// Model costs and devices shared by the partition tests.
#pragma once

#include <string>
#include <vector>

#include "partition/hardware_profile.h"
#include "partition/solver.h"
#include "runtime/core/units.h"

namespace ditrun::partition::testing {

// A Flux-dev-like model at 1024x1024 (4096 image + 512 text tokens, one image, no CFG batch):
// 19 double blocks and 38 single blocks, ~11.9B weights; bytes per weight 2 (bf16) or 1 (fp8).
inline ModelCost flux_like(double bytes_per_weight, const std::string& weight_class, int micro_batches = 1) {
  const double tokens = 4608;
  auto block = [&](std::string name, double params, double attention_flops) {
    return BlockCost{std::move(name), static_cast<uint64_t>(params * bytes_per_weight), 2 * params * tokens,
                     static_cast<uint64_t>(tokens * 3072 * 2 * 2), weight_class, attention_flops};
  };
  const double attention = 4 * tokens * tokens * 3072;
  ModelCost m;
  m.blocks.push_back(block("prologue", 0.2e9, 0));
  for (int i = 0; i < 19; ++i) m.blocks.push_back(block("double_blocks." + std::to_string(i), 0.34e9, attention));
  for (int i = 0; i < 38; ++i) m.blocks.push_back(block("single_blocks." + std::to_string(i), 0.141e9, attention));
  m.blocks.push_back(block("epilogue", 0.01e9, 0));
  m.step_activation_bytes = 2 * GiB;
  m.micro_batches = micro_batches;
  m.steps = 28;
  return m;
}

inline ComputeDevice gpu(const std::string& profile, int index, uint64_t budget) {
  return {"cuda:" + std::to_string(index), find_builtin_profile(profile)->throughput, budget};
}

inline SolverInput input_for(ModelCost model, std::vector<ComputeDevice> gpus, uint64_t host_budget,
                             Objective objective = Objective::latency) {
  SolverInput in;
  in.model = std::move(model);
  in.devices = std::move(gpus);
  in.host = {"cpu", find_builtin_profile("cpu")->throughput, host_budget};
  in.objective = objective;
  return in;
}

}  // namespace ditrun::partition::testing
