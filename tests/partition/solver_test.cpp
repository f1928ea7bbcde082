// The solver on realistic shapes: which mode it picks and why, and what it refuses.
#include "partition/solver.h"

#include <gtest/gtest.h>

#include "runtime/core/units.h"
#include "runtime/core/error.h"
#include "test_models.h"

namespace ditrun::partition {
namespace {

using testing::flux_like;
using testing::gpu;
using testing::input_for;

size_t streamed_count(const RankPlan& r) {
  size_t n = 0;
  for (const auto& b : r.blocks) n += b.home == Home::streamed;
  return n;
}

std::string refusal(const SolverInput& in) {
  try {
    solve(in);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Solver, FitsOnOneBigGpu) {
  const Plan plan = solve(input_for(flux_like(2, "bf16"), {gpu("h100", 0, 79 * GiB)}, 100 * GiB));
  EXPECT_EQ(plan.mode, PlanMode::single);
  ASSERT_EQ(plan.ranks.size(), 1u);
  EXPECT_EQ(plan.ranks[0].blocks.size(), 59u);
  EXPECT_EQ(streamed_count(plan.ranks[0]), 0u);
  EXPECT_EQ(plan.ranks[0].peak_bytes, flux_like(2, "bf16").weight_bytes() + 2 * GiB);
  EXPECT_TRUE(plan.exact);
  // ~74 TFLOP of GEMM at 690 TFLOP/s plus attention: about 0.1-0.2 s per step.
  EXPECT_GT(plan.predicted.step_seconds, 0.1);
  EXPECT_LT(plan.predicted.step_seconds, 0.25);
  EXPECT_DOUBLE_EQ(*plan.predicted.job_seconds, 28 * plan.predicted.step_seconds);
}

TEST(Solver, OffloadsTheRemainderAndSpreadsStreamedBlocks) {
  const ModelCost model = flux_like(2, "bf16");  // 22 GiB of bf16 on a 4090 with 2 GiB of activations
  const Plan plan = solve(input_for(model, {gpu("rtx4090", 0, 23 * GiB)}, 64 * GiB));
  EXPECT_EQ(plan.mode, PlanMode::offload);
  const RankPlan& r = plan.ranks[0];
  EXPECT_LE(r.peak_bytes, r.budget_bytes);
  EXPECT_EQ(r.prefetch_depth, 2);
  EXPECT_GT(streamed_count(r), 0u);
  EXPECT_EQ(plan.host_pinned_bytes, r.streamed_bytes());
  // Streaming fewer bytes is the whole game: no more than one block's worth of waste.
  EXPECT_LT(r.budget_bytes - r.peak_bytes, 400'000'000u);
  // At 1024^2 the copies hide behind compute (the point of the overlap model).
  EXPECT_EQ(r.predicted.exposed_transfer_seconds, 0.0);
  // Streamed single blocks are spread out, not bunched at one end.
  std::vector<size_t> positions;
  for (size_t i = 0; i < r.blocks.size(); ++i)
    if (r.blocks[i].home == Home::streamed) positions.push_back(i);
  ASSERT_GE(positions.size(), 2u);
  for (size_t k = 1; k < positions.size(); ++k) EXPECT_GE(positions[k] - positions[k - 1], 2u);
}

TEST(Solver, LatencyPrefersOffloadWhenCopiesHideAndThroughputUsesEveryGpu) {
  const ModelCost model = flux_like(2, "bf16");
  std::vector<ComputeDevice> gpus{gpu("rtx4090", 0, 23 * GiB), gpu("rtx4090", 1, 23 * GiB)};
  const Plan latency = solve(input_for(model, gpus, 64 * GiB));
  EXPECT_EQ(latency.mode, PlanMode::offload);  // a 2-stage pipeline with one micro-batch is no faster
  const Plan throughput = solve(input_for(model, gpus, 64 * GiB, Objective::throughput));
  EXPECT_EQ(throughput.mode, PlanMode::replicas);
  EXPECT_EQ(throughput.group_count(), 2);
  EXPECT_NEAR(throughput.predicted.throughput_step_seconds, throughput.predicted.step_seconds / 2, 1e-9);
  EXPECT_LE(throughput.host_pinned_bytes, 64 * GiB);
}

TEST(Solver, PipelinesWhenNothingMayStream) {
  const ModelCost model = flux_like(2, "bf16");
  std::vector<ComputeDevice> gpus{gpu("rtx4090", 0, 16 * GiB), gpu("rtx4090", 1, 16 * GiB)};
  const Plan plan = solve(input_for(model, gpus, 0));
  EXPECT_EQ(plan.mode, PlanMode::pipeline);
  ASSERT_EQ(plan.ranks.size(), 2u);
  EXPECT_EQ(plan.ranks[0].blocks.front().name, "prologue");
  EXPECT_EQ(plan.ranks[1].blocks.back().name, "epilogue");
  EXPECT_EQ(plan.host_pinned_bytes, 0u);
  EXPECT_GT(plan.ranks[0].predicted.boundary_seconds, 0.0);
  // One micro-batch: the GPipe bound is 2x the slower stage.
  const double slowest = std::max(plan.ranks[0].predicted.stage_seconds, plan.ranks[1].predicted.stage_seconds);
  EXPECT_NEAR(plan.predicted.step_seconds, 2 * slowest, 1e-12);
}

TEST(Solver, MicroBatchesMakePipelinesWorthIt) {
  const ModelCost model = flux_like(2, "bf16", /*micro_batches=*/8);
  std::vector<ComputeDevice> gpus{gpu("h100", 0, 79 * GiB), gpu("h100", 1, 79 * GiB)};
  const Plan plan = solve(input_for(model, gpus, 0));
  EXPECT_EQ(plan.mode, PlanMode::pipeline);
  const Plan one = solve(input_for(model, {gpus[0]}, 0));
  EXPECT_LT(plan.predicted.step_seconds, 0.6 * one.predicted.step_seconds);
}

TEST(Solver, ReplicasOfPipelinesWhenAModelNeedsTwoGpus) {
  const ModelCost model = flux_like(2, "bf16");
  std::vector<ComputeDevice> gpus;
  for (int i = 0; i < 4; ++i) gpus.push_back(gpu("rtx4090", i, 16 * GiB));
  const Plan plan = solve(input_for(model, gpus, 0, Objective::throughput));
  EXPECT_EQ(plan.mode, PlanMode::replicas_of_pipelines);
  EXPECT_EQ(plan.group_count(), 2);
  EXPECT_EQ(plan.ranks[2].group, 1);
  EXPECT_EQ(plan.ranks[2].stage, 0);
  EXPECT_EQ(plan.ranks[2].device, "cuda:2");
}

TEST(Solver, FasterGpuTakesMoreOfAPipeline) {
  const ModelCost model = flux_like(1, "fp8", /*micro_batches=*/4);
  std::vector<ComputeDevice> gpus{gpu("rtx4090", 0, 10 * GiB), gpu("h100", 1, 10 * GiB)};
  const Plan plan = solve(input_for(model, gpus, 0));
  ASSERT_EQ(plan.ranks.size(), 2u);
  const RankPlan& h100 = plan.ranks[0].device == "cuda:1" ? plan.ranks[0] : plan.ranks[1];
  const RankPlan& ada = plan.ranks[0].device == "cuda:1" ? plan.ranks[1] : plan.ranks[0];
  EXPECT_GT(h100.resident_bytes() + h100.streamed_bytes(), ada.resident_bytes() + ada.streamed_bytes());
}

TEST(Solver, UnusedGpusAndCpuOnly) {
  const ModelCost model = flux_like(1, "fp8");
  Plan plan = solve(input_for(model, {gpu("h100", 0, 0), gpu("h100", 1, 40 * GiB)}, 0));
  EXPECT_EQ(plan.ranks[0].device, "cuda:1");
  plan = solve(input_for(model, {}, 64 * GiB));
  EXPECT_EQ(plan.mode, PlanMode::single);
  EXPECT_EQ(plan.ranks[0].device, "cpu");
  EXPECT_EQ(plan.ranks[0].peak_bytes, model.weight_bytes() + 2 * GiB);
  EXPECT_EQ(refusal(input_for(model, {}, 8 * GiB)),
            "plan does not fit: no GPU has a budget, so everything runs resident on cpu, which needs 13.2 GiB (weights "
            "11.2 GiB + activations 2 GiB) and has a budget of 8 GiB (5.2 GiB short)");
}

TEST(Solver, RefusalNamesRoomShortfallAndRemedies) {
  // 22.4 GiB of bf16 on a 12 GiB budget: 12 - 2 (activations) - 2 x 648.5 MiB (slots) = 8.7 GiB
  // resident, so 13.7 GiB must stream but only 4 GiB may be pinned. More VRAM needs less
  // than the 9.7 GiB host shortfall: once every double block is resident, the slots shrink
  // to single-block size. Weights at 0.6x: 22.4 * 0.6 + 2 slots of a 0.6x single block fits
  // in 10 GiB resident room + 4 GiB pinned.
  const ModelCost model = flux_like(2, "bf16");
  const std::string msg = refusal(input_for(model, {gpu("rtx4090", 0, 12 * GiB)}, 4 * GiB));
  EXPECT_EQ(msg,
            "plan does not fit: 59 blocks weigh 22.4 GiB (largest 648.5 MiB) and each GPU needs 2 GiB for activations; "
            "cuda:0 has 12 GiB: 8.7 GiB left for resident blocks beside 2 slots of 648.5 MiB; 13.7 GiB must stream "
            "from pinned host RAM, whose budget is 4 GiB (9.7 GiB short); it fits with 9.7 GiB more host RAM, 9 GiB "
            "more VRAM per GPU or weights at 0.60x their size or less (fp8 is 0.5x of bf16, q8_0 0.53x, q4_K 0.28x)");
  // Each remedy really is enough, and (for VRAM and host) no less would do.
  EXPECT_NO_THROW(solve(input_for(model, {gpu("rtx4090", 0, 21 * GiB)}, 4 * GiB)));
  EXPECT_THROW(solve(input_for(model, {gpu("rtx4090", 0, 20 * GiB + 900 * MiB)}, 4 * GiB)), Error);
  EXPECT_NO_THROW(solve(input_for(model, {gpu("rtx4090", 0, 12 * GiB)}, 14 * GiB - 200 * MiB)));
}

TEST(Solver, RefusalWhenABlockFitsNowhere) {
  ModelCost model = flux_like(1, "fp8");
  model.blocks[5].weight_bytes = 6 * GiB;
  std::vector<ComputeDevice> gpus{gpu("rtx4090", 0, 8 * GiB), gpu("rtx4090", 1, 8 * GiB)};
  const std::string msg = refusal(input_for(model, gpus, 64 * GiB));
  EXPECT_NE(msg.find("cuda:0, cuda:1 have 8 GiB each: needs 14 GiB for activations + 2 slots of the largest block"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("no split of the blocks fits these GPUs, whatever the host RAM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("more VRAM per GPU"), std::string::npos) << msg;
}

TEST(Solver, InputErrors) {
  ModelCost model = flux_like(1, "fp8");
  model.blocks[3].weight_class = "fp4";
  EXPECT_EQ(refusal(input_for(model, {gpu("h100", 0, 40 * GiB)}, 0)),
            "block 'double_blocks.2': weight class 'fp4' has no GEMM rate on cuda:0 (has bf16, fp8, gguf)");
  SolverInput in = input_for(flux_like(1, "fp8"), {gpu("h100", 0, 40 * GiB)}, 0);
  in.prefetch_slots = 1;
  EXPECT_EQ(refusal(in), "solver: prefetch_slots 1 is below 2 (copies could not overlap compute)");
}

TEST(Solver, MakeSolverInputFromInventoryAndBudgets) {
  const DeviceInventory inv = parse_device_override("2x rtx4090");
  const Budgets budgets = resolve_budgets(parse_allocation("cuda:1,12gb;cpu,32gb"), inv);
  const SolverInput in = make_solver_input(flux_like(1, "fp8"), inv, budgets, Objective::latency);
  ASSERT_EQ(in.devices.size(), 1u);
  EXPECT_EQ(in.devices[0].name, "cuda:1");
  EXPECT_EQ(in.devices[0].budget_bytes, 12 * GiB);
  EXPECT_EQ(in.host.budget_bytes, 32 * GiB);
  EXPECT_EQ(solve(in).ranks[0].device, "cuda:1");
}

TEST(Solver, MinPinnedBytes) {
  // Four 10-byte blocks and 2 slots of 10: 25 bytes hold the slots only (all 40 stream), 30 bytes
  // one resident block, 40 bytes all four; two GPUs of 20 split them; 19 bytes cannot hold the slots.
  EXPECT_EQ(min_pinned_bytes({10, 10, 10, 10}, {25}, 0, 2), 40u);
  EXPECT_EQ(min_pinned_bytes({10, 10, 10, 10}, {30}, 0, 2), 30u);
  EXPECT_EQ(min_pinned_bytes({10, 10, 10, 10}, {40}, 0, 2), 0u);
  EXPECT_EQ(min_pinned_bytes({10, 10, 10, 10}, {20, 20}, 0, 2), 0u);
  EXPECT_EQ(min_pinned_bytes({10, 10, 10, 10}, {19}, 0, 2), UINT64_MAX);
  EXPECT_EQ(min_pinned_bytes({10, 10, 10, 10}, {45}, 10, 2), 30u);  // 10 of the 45 hold activations
}

TEST(Solver, LargeInstanceIsFast) {
  // 8 GPUs of two kinds, throughput objective: the grouping enumeration stays small.
  ModelCost model = flux_like(2, "bf16", 4);
  std::vector<ComputeDevice> gpus;
  for (int i = 0; i < 8; ++i) gpus.push_back(gpu(i < 4 ? "rtx4090" : "rtx3090", i, 20 * GiB));
  const Plan plan = solve(input_for(model, gpus, 128 * GiB, Objective::throughput));
  EXPECT_GE(plan.ranks.size(), 4u);
  EXPECT_TRUE(plan.exact);
}

}  // namespace
}  // namespace ditrun::partition

namespace ditrun::partition {
namespace {

TEST(Solver, RefusalNamesADeviceWithoutACopyRate) {
  // 24 GiB cannot hold bf16 Flux with its activations: blocks must stream, but this device's
  // profile has no host->device rate, so no streaming plan has a finite time.
  ComputeDevice card = testing::gpu("rtx4090", 0, 20 * GiB);
  card.throughput.host_to_device_bytes_per_s = 0;
  const std::string why = refusal(testing::input_for(testing::flux_like(2, "bf16"), {card}, 100 * GiB));
  EXPECT_NE(why.find("cuda:0 has no host->device rate in its profile"), std::string::npos) << why;
}

TEST(Solver, TheCpuBackendAsADeviceIsNotCalledAGpu) {
  SolverInput in = testing::input_for(testing::flux_like(2, "bf16"), {}, 100 * GiB);
  in.devices = {ComputeDevice{"cpu", find_builtin_profile("cpu")->throughput, 1 * GiB}};
  const std::string why = refusal(in);
  EXPECT_NE(why.find("each device needs"), std::string::npos) << why;
  EXPECT_EQ(why.find("GPU"), std::string::npos) << why;
}

}  // namespace
}  // namespace ditrun::partition

namespace ditrun::partition {
namespace {

TEST(Solver, ALayoutForcesTheShapeOfThePlan) {
  // Four H100s would hold Flux alone; forced layouts still get the best plan of their shape.
  auto four = [] {
    std::vector<ComputeDevice> g;
    for (int i = 0; i < 4; ++i) g.push_back(testing::gpu("h100", i, 79 * GiB));
    return g;
  };
  SolverInput pipeline = testing::input_for(testing::flux_like(2, "bf16"), four(), 100 * GiB);
  pipeline.layout = {1, 4};
  const Plan p = solve(pipeline);
  EXPECT_EQ(p.mode, PlanMode::pipeline);
  EXPECT_EQ(p.ranks.size(), 4u);

  SolverInput replicas = testing::input_for(testing::flux_like(2, "bf16"), four(), 100 * GiB);
  replicas.layout = {4, 1};
  const Plan r = solve(replicas);
  EXPECT_EQ(r.mode, PlanMode::replicas);
  EXPECT_EQ(r.group_count(), 4);

  SolverInput mixed = testing::input_for(testing::flux_like(2, "bf16"), four(), 100 * GiB);
  mixed.layout = {2, 2};
  const Plan m = solve(mixed);
  EXPECT_EQ(m.mode, PlanMode::replicas_of_pipelines);
  EXPECT_EQ(m.group_count(), 2);
  EXPECT_EQ(m.ranks.size(), 4u);

  SolverInput impossible = testing::input_for(testing::flux_like(2, "bf16"), four(), 100 * GiB);
  impossible.layout = {3, 2};  // six ranks from four GPUs
  const std::string why = refusal(impossible);
  EXPECT_NE(why.find("no plan with 3 group(s) of 2 stage(s) each fits; without that constraint it fits as"),
            std::string::npos)
      << why;
}

}  // namespace
}  // namespace ditrun::partition
