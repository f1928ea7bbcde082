#include "partition/cost_model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "runtime/core/error.h"

namespace ditrun::partition {
namespace {

Throughput device() {
  Throughput t;
  t.gemm_flops = {{"bf16", 100e12}, {"fp8", 200e12}};
  t.attention_flops = 50e12;
  t.memory_bytes_per_s = 1e12;
  t.host_to_device_bytes_per_s = 25e9;
  t.device_to_device_bytes_per_s = 10e9;
  return t;
}

TEST(CostModel, ComputeIsGemmRooflinePlusAttention) {
  const BlockCost block{"b", 1'000'000'000, 300e12, 0, "bf16", 100e12};
  EXPECT_DOUBLE_EQ(compute_seconds(block, device(), "cuda:0"), 3.0 + 2.0);
  BlockCost fp8 = block;
  fp8.weight_class = "fp8";
  EXPECT_DOUBLE_EQ(compute_seconds(fp8, device(), "cuda:0"), 1.5 + 2.0);
  // Few tokens: reading 1 TB of weights at 1 TB/s takes longer than 1 TFLOP at 100 TFLOP/s.
  const BlockCost bound{"b", 1'000'000'000'000, 1e12, 0, "bf16", 0};
  EXPECT_DOUBLE_EQ(compute_seconds(bound, device(), "cuda:0"), 1.0);
}

TEST(CostModel, ElementwiseBytesAtTheElementwiseRateOrTheMemoryRate) {
  BlockCost block{"b", 0, 0, 0, "bf16", 0};
  block.elementwise_bytes = 3e12;
  Throughput t = device();
  EXPECT_DOUBLE_EQ(compute_seconds(block, t, "cuda:0"), 3.0);  // no elementwise rate: the memory rate
  t.elementwise_bytes_per_s = 0.5e12;
  EXPECT_DOUBLE_EQ(compute_seconds(block, t, "cuda:0"), 6.0);
  block.flops = 100e12;
  EXPECT_DOUBLE_EQ(compute_seconds(block, t, "cuda:0"), 1.0 + 6.0);
  ModelCost cost;
  cost.blocks = {block};
  cost.blocks[0].elementwise_bytes = -1;
  EXPECT_THROW(validate(cost), Error);
}

TEST(CostModel, TransfersUseTheSlowerEnd) {
  EXPECT_DOUBLE_EQ(host_to_device_seconds(50'000'000'000, device()), 2.0);
  Throughput fast = device();
  fast.device_to_device_bytes_per_s = 400e9;
  EXPECT_DOUBLE_EQ(device_to_device_seconds(20'000'000'000, fast, device()), 2.0);
  EXPECT_DOUBLE_EQ(device_to_device_seconds(0, fast, Throughput{}), 0.0);
  EXPECT_TRUE(std::isinf(device_to_device_seconds(1, fast, Throughput{})));
}

TEST(CostModel, UnknownWeightClassNamesBlockAndDevice) {
  try {
    compute_seconds({"double_blocks.3", 10, 1e9, 0, "fp4", 0}, device(), "cuda:1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "block 'double_blocks.3': weight class 'fp4' has no GEMM rate on cuda:1 (has bf16, fp8)");
  }
}

TEST(CostModel, ValidateNamesTheProblem) {
  ModelCost m;
  EXPECT_THROW(validate(m), Error);
  m.blocks = {{"a", 1, 1, 0, "bf16", 0}, {"a", 1, 1, 0, "bf16", 0}};
  try {
    validate(m);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "model cost: block 'a' appears twice");
  }
  m.blocks[1].name = "b";
  m.blocks[1].flops = NAN;
  EXPECT_THROW(validate(m), Error);
  m.blocks[1].flops = 1;
  m.micro_batches = 0;
  EXPECT_THROW(validate(m), Error);
  m.micro_batches = 2;
  validate(m);
  EXPECT_EQ(m.weight_bytes(), 2u);
  EXPECT_EQ(m.largest_block_bytes(), 1u);
}

}  // namespace
}  // namespace ditrun::partition
