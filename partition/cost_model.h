// The planner's view of a model for one job: no tensors, only bytes and FLOPs per unit of
// placement (prologue, each block, epilogue), and the time a device needs for them.
//
// Times (all in seconds, per sampler step of one job):
//   compute   = max(flops / gemm rate of the block's weight class, weight_bytes / memory rate)
//               + attention_flops / attention rate
//               + elementwise_bytes / elementwise rate (the memory rate where none is given)
//               The max is a roofline: at few tokens a GEMM is bound by reading its weights.
//   transfer  = bytes / host->device rate                (streaming a block from pinned RAM)
//   boundary  = bytes / min(d2d rate of the two devices)  (activations between pipeline stages)
//   shared    = a block's compute on one of the N ranks sharing its step, plus its exchange
//               (see shared_compute_seconds)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "partition/hardware_profile.h"

namespace ditrun::partition {

struct BlockCost {
  std::string name;              // "double_blocks.3"
  uint64_t weight_bytes = 0;     // as stored (quantized bytes travel quantized)
  double flops = 0;              // GEMM FLOPs of one step of the job (tokens and CFG batch folded in)
  uint64_t activation_bytes = 0; // the activation state leaving this unit (what a stage boundary sends)
  std::string weight_class;      // "bf16", "fp8", "gguf": selects the GEMM rate
  double attention_flops = 0;    // attention FLOPs (no weights, bf16 whatever the weight class)
  double elementwise_bytes = 0;  // activation bytes read + written by norms, modulation, RoPE, activations, residuals
  double exchange_bytes = 0;     // self-attention's q, k, v and output over the whole sequence (sequence parallelism moves them)
};

struct ModelCost {
  std::vector<BlockCost> blocks;        // in execution order: prologue, blocks, epilogue
  uint64_t step_activation_bytes = 0;   // live buffers + attention workspace, needed on every rank
  int micro_batches = 1;                // slices of one job's step that may cross stages apart
  int steps = 0;                        // sampler steps of the job; 0 = unknown (no job time)

  uint64_t weight_bytes() const;
  uint64_t largest_block_bytes() const;
};

// Throws ditrun::Error naming the block or field: no blocks, empty or repeated names, negative
// or non-finite FLOPs, micro_batches < 1, steps < 0.
void validate(const ModelCost& model);

// `device` only names the device in the error when the weight class has no GEMM rate there.
double compute_seconds(const BlockCost& block, const Throughput& device, std::string_view device_name);

// One block's step on a rank of a team that shares it (partition/plan.h): `sequence` ranks
// share the tokens and `cfg` ranks the batch (the cost's batch must hold the CFG halves).
// GEMM FLOPs, attention FLOPs and elementwise bytes divide by sequence x cfg; the weights are
// still read whole (the roofline's memory term); a block with self-attention adds its
// exchange, at the host<->device rate (today's exchange goes through host memory on every
// backend). With N = U x R sequence ranks, e = this rank's 1/N of q, k, v and the output:
// Ulysses over U stages e through the host twice and sends (U-1)/U of it; a ring of R passes
// a block of k and v (e/2) R-1 times, staged twice each, and merges R partial outputs (e/4
// each). The prologue and epilogue are not shared: price them with compute_seconds.
struct StepSharing {
  int sequence = 1;
  int cfg = 1;
  int ring = 0;  // the sequence ranks' ring degree; 0: all Ulysses (the heads decide at run time)
  int ranks() const { return sequence * cfg; }
};
double shared_compute_seconds(const BlockCost& block, const Throughput& device, std::string_view device_name,
                              StepSharing sharing);
double exchange_seconds(const BlockCost& block, const Throughput& device, StepSharing sharing);
double host_to_device_seconds(uint64_t bytes, const Throughput& device);
double device_to_device_seconds(uint64_t bytes, const Throughput& from, const Throughput& to);

}  // namespace ditrun::partition
