// A Plan says which rank runs which blocks on which device, which of its blocks stay resident
// and which stream from pinned host RAM, and what the cost model predicts. The solver makes
// one; the runtime follows it; `ditrun plan` prints it as JSON:
//
//   {"schema": "ditrun.plan/1", "mode": "pipeline", "objective": "latency", "micro_batches": 2,
//    "steps": 28, "exact": true, "host_budget_bytes": ..., "host_pinned_bytes": ...,
//    "ranks": [{"rank": 0, "device": "cuda:0", "group": 0, "stage": 0,
//               "budget_bytes": ..., "peak_bytes": ..., "activation_bytes": ...,
//               "slot_bytes": ..., "prefetch_depth": 2,
//               "blocks": [{"name": "double_blocks.0", "home": "resident", "bytes": ...}, ...],
//               "predicted": {"compute_seconds": ..., "transfer_seconds": ...,
//                             "exposed_transfer_seconds": ..., "boundary_seconds": ...,
//                             "stage_seconds": ...}}, ...],
//    "predicted": {"step_seconds": ..., "throughput_step_seconds": ...,
//                  "job_seconds": ..., "seconds_per_job": ...}}
//
// A group is a set of ranks that renders one job together (its stages form a pipeline);
// replicas are several groups rendering different jobs. Rank numbers run over groups in
// order, stage by stage, so rank 0 is group 0's first stage (the coordinator).
//
// Each stage may be a team of sequence_parallel x cfg_parallel ranks that share one job's
// step ("share" 0.. in the team; the team member c * sequence_parallel + q holds CFG half c
// and token share q): the members hold the same blocks, and rank numbers run over a stage's
// team before the next stage. Share 0 is the stage's primary, the rank the pipeline talks to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "partition/cost_model.h"

namespace ditrun::partition {

enum class PlanMode { single, offload, pipeline, replicas, replicas_of_pipelines };
std::string_view to_string(PlanMode mode);

enum class Objective { latency, throughput };
std::string_view to_string(Objective objective);
Objective parse_objective(std::string_view text);  // "latency" | "throughput"

enum class Home { resident, streamed };
std::string_view to_string(Home home);

struct PlacedBlock {
  std::string name;
  Home home = Home::resident;
  uint64_t bytes = 0;
};

struct RankPrediction {
  double compute_seconds = 0;           // the rank's blocks, one step
  double transfer_seconds = 0;          // streaming its streamed blocks host -> device
  double exposed_transfer_seconds = 0;  // the part compute does not hide
  double boundary_seconds = 0;          // sending activations to the next stage
  double stage_seconds = 0;             // compute + exposed transfer + boundary
};

struct RankPlan {
  int rank = 0;
  std::string device;
  int group = 0;
  int stage = 0;
  int share = 0;                  // place in the stage's team (0: the primary)
  uint64_t budget_bytes = 0;
  uint64_t peak_bytes = 0;        // resident + prefetch_depth * slot_bytes + activation_bytes
  uint64_t activation_bytes = 0;
  uint64_t slot_bytes = 0;        // largest streamed block (0 when nothing streams)
  int prefetch_depth = 0;         // device slots for streamed blocks (0 when nothing streams)
  std::vector<PlacedBlock> blocks;
  RankPrediction predicted;
  std::string expert;             // ExpertStrategy::phases: "high_noise" or "low_noise", the group's; else ""

  uint64_t resident_bytes() const;
  uint64_t streamed_bytes() const;
};

struct PlanPrediction {
  double step_seconds = 0;             // one sampler step of one job (the slowest group's)
  double throughput_step_seconds = 0;  // 1 / sum over groups of 1/step: amortized over all groups
  std::optional<double> job_seconds;       // steps * step_seconds, when steps are known
  std::optional<double> seconds_per_job;   // steps * throughput_step_seconds
};

// How a plan runs a model of two experts (Wan 2.2 A14B), which computes one expert per step:
//   both  every rank holds its blocks of both experts (resident, or streamed when they do
//         not fit): nothing moves when the expert changes
//   swap    every rank holds its blocks of one expert at a time and loads the other's in
//           their place when a step needs it: twice per job (into the low-noise phase and
//           back), each load priced at the rank's host-to-device rate (swap_seconds); a group
//           then renders one job at a time
//   phases  each group holds one expert (its ranks' `expert`): jobs start on a high-noise
//           group and move, with their latent and sampler history, to a low-noise group at the
//           switch, like a two-stage pipeline of groups
// The planner predicts each that fits and keeps the fastest for the objective;
// `alternative_job_seconds` records the best other one's prediction.
enum class ExpertStrategy { both, swap, phases };
std::string_view to_string(ExpertStrategy strategy);

struct ExpertPlan {
  ExpertStrategy strategy = ExpertStrategy::both;
  double swap_seconds = 0;  // one load of an expert, on the slowest rank (swap only)
  int high_steps = 0, low_steps = 0;  // the planned job's steps of each expert
  std::optional<double> alternative_job_seconds;  // the other strategy's prediction (none: not possible)
};

struct Plan {
  PlanMode mode = PlanMode::single;
  Objective objective = Objective::latency;
  int sequence_parallel = 1;  // ranks sharing one stage's tokens
  int sequence_ring = 0;      // their ring attention degree (0: chosen by the head count)
  int cfg_parallel = 1;       // 2: a stage's cond and uncond halves on different ranks
  int micro_batches = 1;
  int steps = 0;  // 0 = unknown
  bool exact = true;  // the solver proved optimality under its model (see solver.h)
  uint64_t host_budget_bytes = 0;
  uint64_t host_pinned_bytes = 0;  // sum of streamed bytes over all ranks
  // Room kept off rank 0's GPU budget for the text encoders (encoder_placement.h); 0: none.
  uint64_t encoder_bytes = 0;
  std::optional<ExpertPlan> experts;  // a model of two experts
  std::vector<RankPlan> ranks;
  PlanPrediction predicted;

  int group_count() const;
  int team_size() const { return sequence_parallel * cfg_parallel; }
  // The pinned host RAM one rank's process may use: replicas and team members split the host
  // budget equally (each process pins the blocks it streams).
  uint64_t host_share_bytes() const;
};

// Checks the plan is self-consistent: ranks numbered 0.., groups and stages contiguous, every
// rank has blocks, peak = resident + slots + activations and fits the budget, slot size
// covers every streamed block, pinned bytes fit the host budget, each group holds the same
// blocks in the same order, times finite and non-negative. Errors name the field:
// "plan: ranks[1].peak_bytes 30 GiB exceeds budget_bytes 24 GiB".
void validate(const Plan& plan);

nlohmann::json to_json(const Plan& plan);
// Parses and validates; errors name the field ("plan: ranks[0].blocks[2].home: 'disk' is not
// resident or streamed").
Plan plan_from_json(const nlohmann::json& json);

// A few human lines: mode, predicted times, one line per rank.
std::string summarize(const Plan& plan);

// Every rank of a solved plan becomes a team of sequence_parallel x cfg_parallel ranks that
// hold its blocks and share its step (see above); ranks are renumbered, devices named per rank
// ("cpu:N", "cuda:N"). With the model's cost and the ranks' rates the predictions are priced
// again for the shared step (cost_model.h: shared_compute_seconds; the prologue and epilogue
// stay whole, the state's split and gather are host copies), with `ring` the ring degree the
// exchange is priced at (the plan's sequence_ring, what the run asks for, is the caller's);
// without them they are kept.
// Fails when a degree is below 1, cfg_parallel is not 1 or 2, or the team's pinned copies do
// not fit the host budget.
Plan share_steps(const Plan& plan, int sequence_parallel, int cfg_parallel, const ModelCost* cost = nullptr,
                 const Throughput* device = nullptr, int ring = 0);

}  // namespace ditrun::partition
