// Where a run's text encoders go: resident on rank 0's GPU, streamed to it a layer at a time,
// or on the CPU, by the predicted seconds per job. Rank 0 prepares every job (it reads the
// prompts and encodes them), so its GPU and the host are the candidates.
//
// On the GPU an encoder gets only room the DiT's plan was made to keep for it, off rank 0's
// budget: the DiT's backend takes its whole budget as its arena, so what its plan leaves
// under the budget is not free for another backend. The launcher's plan_with_encoders
// weighs that room against the DiT's slower steps. Per job:
//   resident  compute on the GPU                       (needs all layers + activations)
//   streamed  compute on the GPU + weights / host→device rate (needs two layers + activations)
//   cpu       compute on the host                      (the weights stay mapped in host RAM)
// Encoders are placed in the order given, each taking its GPU bytes from what is left.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "partition/cost_model.h"
#include "partition/device_spec.h"
#include "partition/plan.h"

namespace ditrun::partition {

struct EncoderCost {
  std::string name;                // "T5 t5xxl_fp16.safetensors"
  std::vector<BlockCost> layers;   // one job's encoding; what is not a layer (embeddings) is read on the host
  uint64_t activation_bytes = 0;   // its working buffers on the device

  uint64_t weight_bytes() const;
  uint64_t largest_layer_bytes() const;
};

enum class EncoderWhere { resident, streamed, cpu };
std::string_view to_string(EncoderWhere where);

struct EncoderPlacement {
  std::string encoder;
  EncoderWhere where = EncoderWhere::cpu;
  std::string device;         // "cuda:0" or "cpu"
  uint64_t device_bytes = 0;  // what it holds on the GPU (0 on the CPU)
  double seconds_per_job = 0;
  std::string why;            // the alternatives' times, or why they were out
};

// The encoders placed against rank 0 of `plan` (a GPU device of `inventory`, or the CPU).
// `reserved_bytes`: the room the plan kept off rank 0's GPU budget for them. `force` (optional): "cpu" or "gpu" instead of the cheapest; "gpu" fails naming
// the encoder when neither GPU form fits.
std::vector<EncoderPlacement> place_encoders(const std::vector<EncoderCost>& encoders, const Plan& plan,
                                             const DeviceInventory& inventory, std::string_view force = "",
                                             uint64_t reserved_bytes = 0);

}  // namespace ditrun::partition
