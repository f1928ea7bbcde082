// The placement solver: from block costs, device budgets and rates to a Plan.
//
// Search space. GPUs with a budget form groups; a group renders one job as a pipeline of
// stages (one GPU per stage, each a contiguous run of blocks); several groups are replicas
// rendering different jobs. Within a stage each block is resident or streamed: streamed
// blocks live in pinned host RAM and are copied into `prefetch_slots` device slots as large
// as the stage's largest streamed block. With no GPU budget at all the plan runs everything
// resident on the CPU.
//
// Memory (hard constraints, checked exactly in bytes):
//   per rank:  resident bytes + slots * largest streamed block + step_activation_bytes <= budget
//              (the full step's activations on every rank: conservative for pipelines)
//   host:      streamed bytes of the group's ranks <= host budget / number of groups
//              (each replica process pins its own copy; equal shares keep replicas alike)
//
// Time (seconds per sampler step of one job; see cost_model.h for the unit costs):
//   stage    t_s = max(C_s, X_s) + B_s
//            C_s compute of its blocks, X_s = streamed bytes / host->device rate,
//            B_s = activation bytes of its last block / device->device rate to the next stage
//            (the last stage sends to the first; 0 for a one-stage group). max(C, X) is the
//            steady state of a copy stream running ahead of the compute stream with >= 2
//            slots across steps: the exposed transfer is max(0, X - C). It is optimistic when
//            streamed blocks bunch up; the solver spreads equal-size streamed blocks evenly.
//   group    T = (M + S - 1) / M * max_s t_s  for S stages and M micro-batches: one job's
//            step on its own, the GPipe schedule with a flush every step (the sampler needs
//            every micro-batch). It is exact for balanced stages and an upper bound
//            otherwise; with M = 1 a pipeline only adds capacity.
//   rate     1 / max_s t_s job-steps per second: with independent jobs in flight (the
//            runner keeps one per stage) every stage works all the time, so a group finishes
//            a job-step every slowest-stage time, however many stages it has.
//   latency objective:    minimize T of one group (other GPUs stay idle).
//   throughput objective: maximize the sum of the groups' rates, i.e. minimize the amortized
//                         step time 1 / sum(1 / max_s t_s).
//
// Algorithm and optimality. GPUs with equal budget and rates are interchangeable, so the
// solver enumerates ordered sequences of device classes (and, for throughput, multisets of
// such sequences as groups). For each stage range and class, StageFits finds the residency
// that streams the fewest bytes: that minimizes the stage time and the pinned host RAM at
// the same time, so no stage ever trades one for the other. For a sequence, a min-max DP over
// contiguous splits gives the smallest possible slowest stage; if its split pins more than
// the host share, a binary search over the candidate stage times with a DP that minimizes
// pinned bytes under a stage-time cap finds the smallest feasible one (feasibility only grows
// with the cap). Both DPs are exact, O(S n^2) for S stages and n blocks. So the plan is
// optimal under the model whenever StageFits is exact (see stage_fit.h for its bound
// otherwise: streamed bytes over the optimum by at most blocks-in-stage / 4096 of the
// capacity) and the enumeration was complete (beyond kMaxSequences device sequences only
// sorted ones are tried; beyond kMaxGroupings groupings the search stops); Plan::exact says
// whether both held. Tests check it against brute force on random instances (up to 8
// blocks, 1-3 GPUs, both objectives). A Flux-sized model (59 blocks) on 8 GPUs of three
// kinds plans in well under a second.
//
// Ties go to fewer ranks, then to fewer pinned bytes.
//
// A plan that cannot fit is refused with a ditrun::Error before anything is allocated; the
// message names each GPU's room, the pinned bytes needed and the host shortfall, and what
// would make it fit (more host RAM, more VRAM per GPU, or smaller weights).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "partition/allocation_spec.h"
#include "partition/cost_model.h"
#include "partition/device_spec.h"
#include "partition/plan.h"

namespace ditrun::partition {

inline constexpr size_t kMaxSequences = 20000;
inline constexpr size_t kMaxGroupings = 200000;

struct ComputeDevice {
  std::string name;  // "cuda:0", or "cpu"
  Throughput throughput;
  uint64_t budget_bytes = 0;
};

// A layout the caller insists on (`--mode`): so many groups of so many stages; 0 = free.
struct Layout {
  int groups = 0;
  int stages = 0;
  int ranks = 0;  // ranks in all (the processes mpirun started must all take part)
  bool free() const { return groups == 0 && stages == 0 && ranks == 0; }
};

struct SolverInput {
  ModelCost model;
  // The compute devices: GPUs, or CPU backends when ranks compute on the CPU. Budget 0 = not used.
  std::vector<ComputeDevice> devices;
  ComputeDevice host;               // budget = pinned host RAM (all of the model when no GPU is used)
  Objective objective = Objective::latency;
  int prefetch_slots = 2;           // device slots for streamed blocks, >= 2 so copies overlap compute
  Layout layout;                    // restricts the search; the best plan of that shape
};

// GPUs from the budgets (with the inventory's rates), the host budget and the cpu rates.
SolverInput make_solver_input(ModelCost model, const DeviceInventory& inventory, const Budgets& budgets,
                              Objective objective);

// The best plan under the model above; throws ditrun::Error when nothing fits or the input is
// malformed (a weight class a device has no rate for, prefetch_slots < 2, ...).
Plan solve(const SolverInput& input);

// "2 group(s) of 2 stage(s) each", for messages.
std::string describe(const Layout& layout);

// The fewest bytes any plan must pin in host RAM, ignoring the host budget, or UINT64_MAX if
// no placement fits the GPU budgets at all. Depends on bytes only (weights, budgets,
// activations, slots). A plan exists iff this is <= the host budget.
uint64_t min_pinned_bytes(const std::vector<uint64_t>& weights, const std::vector<uint64_t>& gpu_budgets,
                          uint64_t activation_bytes, int slots);

}  // namespace ditrun::partition
