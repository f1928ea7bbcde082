// Text encoders against rank 0 of a DiT plan (encoder_placement.h): resident when the room
// kept for them holds all of it, streamed when it holds two layers and the copy beats the
// CPU, on the CPU otherwise; encoders take their GPU bytes from what is left in order.
#include <gtest/gtest.h>

#include "partition/encoder_placement.h"
#include "runtime/core/error.h"

namespace ditrun::partition {
namespace {

constexpr uint64_t GiB = uint64_t(1) << 30;

Throughput rates(double tflops, double h2d_gb_s) {
  Throughput t;
  t.gemm_flops = {{"bf16", tflops * 1e12}, {"fp8", tflops * 1e12}, {"gguf", tflops * 1e12}};
  t.attention_flops = tflops * 1e12;
  t.memory_bytes_per_s = 1e12;
  t.host_to_device_bytes_per_s = h2d_gb_s * 1e9;
  return t;
}

DeviceInventory machine(uint64_t gpu_bytes) {
  DeviceSpec gpu;
  gpu.name = "cuda:0";
  gpu.total_bytes = gpu.free_bytes = gpu_bytes;
  gpu.throughput = rates(400, 25);
  DeviceInventory inventory = make_inventory({gpu}, 64 * GiB, 64 * GiB);
  for (DeviceSpec& d : inventory.devices)
    if (d.kind == HardwareKind::cpu) d.throughput = rates(0.3, 0);
  return inventory;
}

// Rank 0 on the GPU, its budget full: what is under the budget is the DiT's arena.
Plan dit_plan() {
  Plan plan;
  RankPlan r;
  r.device = "cuda:0";
  r.budget_bytes = r.peak_bytes = 10 * GiB;
  plan.ranks.push_back(r);
  return plan;
}

// A T5-XXL-like encoder: 24 layers of ~400 MB, ~200 GFLOP each for 512 tokens.
EncoderCost t5xxl() {
  EncoderCost e;
  e.name = "t5";
  for (int i = 0; i < 24; ++i) e.layers.push_back({"t5.layers." + std::to_string(i), 400'000'000, 2e11, 0, "bf16", 4e9, 1e8, 0});
  e.activation_bytes = 100'000'000;
  return e;
}

TEST(EncoderPlacement, ResidentStreamedOrCpuByRoomAndTime) {
  const EncoderCost t5 = t5xxl();
  // Plenty of room kept: resident, faster than streaming its 9.6 GB.
  auto p = place_encoders({t5}, dit_plan(), machine(80 * GiB), "", 20 * GiB);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].where, EncoderWhere::resident);
  EXPECT_EQ(p[0].device, "cuda:0");
  EXPECT_EQ(p[0].device_bytes, t5.weight_bytes() + t5.activation_bytes);
  // 2 GB kept: two layers fit, and 0.4 s of copies beat 16 s on the CPU.
  p = place_encoders({t5}, dit_plan(), machine(12 * GiB), "", 2 * GiB);
  EXPECT_EQ(p[0].where, EncoderWhere::streamed);
  EXPECT_NEAR(p[0].seconds_per_job, 24 * (2e11 / 4e14 + 4e9 / 4e14) + 9.6e9 / 25e9, 0.05);
  // Nothing kept: the CPU.
  p = place_encoders({t5}, dit_plan(), machine(12 * GiB));
  EXPECT_EQ(p[0].where, EncoderWhere::cpu);
  EXPECT_EQ(p[0].device, "cpu");
  EXPECT_NE(p[0].why.find("does not fit"), std::string::npos) << p[0].why;
  // --encoders-on cpu / gpu.
  EXPECT_EQ(place_encoders({t5}, dit_plan(), machine(80 * GiB), "cpu", 20 * GiB)[0].where, EncoderWhere::cpu);
  EXPECT_THROW(place_encoders({t5}, dit_plan(), machine(12 * GiB), "gpu"), Error);
}

TEST(EncoderPlacement, LaterEncodersGetWhatIsLeft) {
  EncoderCost small = t5xxl();
  small.name = "clip";
  small.layers.resize(2);
  // Room for the T5 resident (9.7 GB) and 600 MB more: too little for the second one.
  const uint64_t kept = t5xxl().weight_bytes() + t5xxl().activation_bytes + 600'000'000;
  const auto p = place_encoders({t5xxl(), small}, dit_plan(), machine(40 * GiB), "", kept);
  EXPECT_EQ(p[0].where, EncoderWhere::resident);
  EXPECT_EQ(p[1].where, EncoderWhere::cpu) << p[1].why;  // 600 MB < two 400 MB layers + activations
}

TEST(EncoderPlacement, CpuPlansRunOnTheCpu) {
  Plan plan;
  RankPlan r;
  r.device = "cpu";
  plan.ranks.push_back(r);
  const auto p = place_encoders({t5xxl()}, plan, machine(80 * GiB));
  EXPECT_EQ(p[0].where, EncoderWhere::cpu);
  EXPECT_NE(p[0].why.find("no GPU"), std::string::npos);
}

}  // namespace
}  // namespace ditrun::partition
