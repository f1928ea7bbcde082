// How big a rank's device arena must be for its share of a plan, and what fills it:
//
//   resident weights   stored bytes of every resident weight, each rounded up to the arena's
//                      alignment, plus its scales as f32 (what the kernels read)
//   prefetch slots     prefetch_depth x slot bytes (the largest streamed unit)
//   activations        the plan's estimate of the live activations at the peak, plus slack for
//                      the heap's fragmentation
//   workspaces         what the kernels need besides activations (GEMM workspace, a weight
//                      decoded for the GEMM, a quantized copy of its input, attention)
//
// The sum is the arena a CUDA backend allocates once; the same numbers explain a refusal
// ("the plan needs 31.2 GiB on cuda:0: ...") and appear in the run's log.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "runtime/core/weight.h"

namespace ditrun::runtime {

struct WorkspaceNeeds {
  uint64_t gemm_bytes = 0;             // cuBLASLt workspace
  uint64_t dequantized_weight_bytes = 0;  // the largest weight that must be decoded before its GEMM
  uint64_t quantized_input_bytes = 0;  // fp8 copy of the largest linear input, with its scales
  uint64_t attention_bytes = 0;        // fused attention workspace
  uint64_t total() const { return gemm_bytes + dequantized_weight_bytes + quantized_input_bytes + attention_bytes; }
};

struct ArenaRequest {
  uint64_t resident_bytes = 0;  // device bytes of the resident weights (see resident_device_bytes)
  int prefetch_depth = 0;
  uint64_t slot_bytes = 0;
  uint64_t activation_bytes = 0;
  WorkspaceNeeds workspace;
};

struct ArenaLayout {
  uint64_t resident_bytes = 0;
  uint64_t slots_bytes = 0;
  uint64_t activation_bytes = 0;  // the estimate plus fragmentation slack
  uint64_t workspace_bytes = 0;
  uint64_t total_bytes = 0;       // rounded up to 2 MiB (the driver's allocation granularity)
  std::string describe() const;   // "resident 22.2 GiB + 2 slots x 324 MiB + activations 3.1 GiB + ..."
  int prefetch_depth = 0;
};

// Activation heap slack: the plan's activation estimate bounds what is live at the peak, but a
// heap that frees and reuses ranges of many sizes holds some gaps: 1/8 more plus 64 MiB
// (tests/unit/arena_test.cpp replays real model calls' allocations through the allocator and
// checks the peak stays within estimate + slack).
uint64_t activation_slack(uint64_t activation_bytes);

// Device bytes of one weight in an arena with `alignment`: stored bytes and f32 scales, each
// rounded up.
uint64_t weight_device_bytes(uint64_t stored_bytes, uint64_t scale_count, uint64_t alignment = 256);

ArenaLayout layout_arena(const ArenaRequest& request);

// The workspaces a GPU backend needs for these weights, with `activation_bytes` of
// activations of `element_bytes` each: the GEMM workspace, the largest weight that is not
// stored in the activation type decoded into it, an fp8 copy of the largest linear input when
// fp8 weights are present (bounded by half the activations), and the attention workspace.
WorkspaceNeeds estimate_workspace(std::span<const Weight* const> weights, uint64_t activation_bytes,
                                  uint64_t element_bytes);

}  // namespace ditrun::runtime
