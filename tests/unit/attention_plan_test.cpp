// The attention planners without a GPU: head-dim buckets, the flash kernels' tiles (shared
// memory within the limits, loads dividing evenly over the threads), launch grids covering
// every (batch item, head, query tile) exactly once, and the cuDNN key and eligibility rules.
#include <gtest/gtest.h>

#include <map>
#include <tuple>
#include <unordered_set>

#include "kernels/cuda_plan/attention_plan.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cuda_plan {
namespace {

// q, k, v as column slices of one fused [B, L, 3·H·D] buffer, out packed [B, L, H·D].
AttentionShape fused(DType dtype, int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d) {
  AttentionShape s;
  s.dtype = dtype;
  s.batch = batch;
  s.heads = heads;
  s.lq = lq;
  s.lk = lk;
  s.head_dim = d;
  const int64_t c = heads * d;
  s.q_row = 3 * c;
  s.q_batch = lq * 3 * c;
  s.k_row = s.v_row = 3 * c;
  s.k_batch = s.v_batch = lk * 3 * c;
  s.o_row = c;
  s.o_batch = lq * c;
  return s;
}

constexpr int64_t kA100SharedBytesPerBlock = 163 * 1024;  // the compute_80 PTX target's GPUs

TEST(AttentionPlan, HeadDimBuckets) {
  EXPECT_EQ(head_dim_bucket(0), 0);
  EXPECT_EQ(head_dim_bucket(1), 64);
  EXPECT_EQ(head_dim_bucket(32), 64);
  EXPECT_EQ(head_dim_bucket(48), 64);
  EXPECT_EQ(head_dim_bucket(64), 64);
  EXPECT_EQ(head_dim_bucket(65), 128);
  EXPECT_EQ(head_dim_bucket(128), 128);
  EXPECT_EQ(head_dim_bucket(129), 256);
  EXPECT_EQ(head_dim_bucket(256), 256);
  EXPECT_EQ(head_dim_bucket(257), 512);  // the f32 kernel only (the VAEs' mid blocks)
  EXPECT_EQ(head_dim_bucket(512), 512);
  EXPECT_EQ(head_dim_bucket(513), 0);
}

TEST(AttentionPlan, AddressAlignment) {
  EXPECT_EQ(address_alignment(0), 16);
  EXPECT_EQ(address_alignment(1), 1);
  EXPECT_EQ(address_alignment(6), 2);
  EXPECT_EQ(address_alignment(24), 8);
  EXPECT_EQ(address_alignment(48), 16);
  EXPECT_EQ(address_alignment(0x7f0000001000ull), 16);
}

TEST(AttentionPlan, Bf16TilesFitAndDivide) {
  for (int bucket : {64, 128, 256}) {
    SCOPED_TRACE(bucket);
    const Bf16Tile t = bf16_tile(bucket);
    EXPECT_EQ(t.head_dim, bucket);
    EXPECT_EQ(t.stages, 2);
    EXPECT_GE(bucket / 8, 8) << "the swizzle permutes 8 chunks within a row";
    EXPECT_EQ(t.kv_tile % 16, 0) << "P·V takes whole k16 steps of keys";
    EXPECT_EQ(t.q_tile(), t.warps * t.m_tiles * 16);
    EXPECT_LE(t.threads(), 1024);
    EXPECT_LE(t.shared_bytes(), kMaxSharedBytesPerBlock);
    EXPECT_LE(t.shared_bytes(), kA100SharedBytesPerBlock);
    EXPECT_EQ(t.shared_bytes(), 2 * (t.q_tile() + 2 * t.stages * t.kv_tile) * bucket);
    // load_tile: each thread copies one 16-byte chunk column of every (threads/chunks)-th row.
    const int chunks = bucket / 8, step = t.threads() / chunks;
    EXPECT_EQ(t.threads() % chunks, 0);
    EXPECT_EQ(t.q_tile() % step, 0);
    EXPECT_EQ(t.kv_tile % step, 0);
  }
  EXPECT_EQ(bf16_tile(96).head_dim, 0);
}

TEST(AttentionPlan, F32TilesFitAndDivide) {
  for (int bucket : {64, 128, 256, 512}) {
    SCOPED_TRACE(bucket);
    const F32Tile t = f32_tile(bucket);
    EXPECT_EQ(t.head_dim, bucket);
    EXPECT_EQ(t.threads, 4 * t.q_tile) << "4 threads per query row";
    EXPECT_EQ(t.kv_tile, 4 * 8) << "each thread scores 8 keys of its row";
    EXPECT_EQ(bucket % 16, 0) << "each thread owns whole float4 groups";
    EXPECT_EQ(t.qk_pitch() % 4, 0) << "float4 reads stay 16-byte aligned";
    EXPECT_EQ((t.qk_pitch() * 4) % 128, 16) << "consecutive rows start in different bank groups";
    EXPECT_LE(t.shared_bytes(), kMaxSharedBytesPerBlock);
    EXPECT_LE(t.shared_bytes(), kA100SharedBytesPerBlock);
    EXPECT_EQ(t.q_floats() % 4, 0);
    EXPECT_EQ(t.k_floats() % 4, 0);
    EXPECT_EQ(t.v_floats() % 4, 0);
  }
}

// Replays the launches of a plan: every (batch item, head, query row) is covered by exactly one
// block, and no block lies outside the call.
void expect_covers(const AttentionShape& s) {
  const FlashPlan p = plan_flash_attention(s);
  ASSERT_GT(p.q_tile, 0);
  ASSERT_LE(p.grid_y, kMaxGridYZ);
  ASSERT_LE(p.batch_per_launch, kMaxGridYZ);
  ASSERT_LE(p.batch_per_launch, kFlashMaxKvLens);
  ASSERT_LE(p.grid_x, kMaxGridX);
  EXPECT_EQ(p.grid_y, s.heads);
  EXPECT_GE(p.grid_x * p.q_tile, s.lq);
  EXPECT_LT((p.grid_x - 1) * p.q_tile, s.lq) << "no block without a query row";
  std::map<std::pair<int64_t, int64_t>, int64_t> blocks;  // (batch item, head) -> blocks
  int64_t launches = 0;
  for (int64_t b0 = 0; b0 < s.batch; b0 += p.batch_per_launch) {
    ++launches;
    const int64_t items = std::min(p.batch_per_launch, s.batch - b0);
    ASSERT_GE(items, 1);
    for (int64_t z = 0; z < items; ++z)
      for (int64_t y = 0; y < p.grid_y; ++y) blocks[{b0 + z, y}] += p.grid_x;
  }
  EXPECT_EQ(launches, p.launches);
  EXPECT_EQ(int64_t(blocks.size()), s.batch * s.heads);
  for (const auto& [item, count] : blocks) EXPECT_EQ(count, p.grid_x);
}

TEST(AttentionPlan, FlashGridCoversEveryTileOnce) {
  for (DType dtype : {DType::BF16, DType::F32})
    for (auto [batch, heads, lq, lk, d] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>>{
             {1, 24, 4608, 4608, 128},  // Flux
             {2, 40, 75600, 512, 128},  // Wan 720p cross-attention
             {2, 2, 77, 77, 32},
             {2, 3, 300, 129, 48},
             {65, 1, 1, 1, 64},
             {130, 4, 129, 7, 256},
             {3, 5, 128, 128, 200}}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " B" << batch << " H" << heads << " Lq" << lq
                                      << " D" << d);
      expect_covers(fused(dtype, batch, heads, lq, lk, d));
    }
}

TEST(AttentionPlan, FlashPlanPicksTheBucketsTile) {
  const FlashPlan bf16 = plan_flash_attention(fused(DType::BF16, 1, 24, 4608, 4608, 128));
  EXPECT_EQ(bf16.bucket, 128);
  EXPECT_TRUE(bf16.vectorized);
  EXPECT_EQ(bf16.shared_bytes, bf16_tile(128).shared_bytes());
  EXPECT_EQ(bf16.threads, bf16_tile(128).threads());
  EXPECT_EQ(bf16.q_tile, bf16_tile(128).q_tile());
  const FlashPlan small = plan_flash_attention(fused(DType::BF16, 2, 2, 77, 77, 48));
  EXPECT_EQ(small.bucket, 64);
  EXPECT_TRUE(small.vectorized) << "48 bf16 = 6 whole 16-byte chunks";
  const FlashPlan f32 = plan_flash_attention(fused(DType::F32, 1, 2, 77, 77, 32));
  EXPECT_EQ(f32.bucket, 64);
  EXPECT_FALSE(f32.vectorized);
  EXPECT_EQ(f32.shared_bytes, f32_tile(64).shared_bytes());
  EXPECT_EQ(f32.threads, f32_tile(64).threads);
}

TEST(AttentionPlan, FlashRefusesWhatTheKernelsCannotTake) {
  EXPECT_THROW(plan_flash_attention(fused(DType::BF16, 1, 2, 16, 16, 257)), Error);
  EXPECT_THROW(plan_flash_attention(fused(DType::F32, 1, 70000, 16, 16, 64)), Error);
  EXPECT_THROW(plan_flash_attention(fused(DType::F16, 1, 2, 16, 16, 64)), Error);
  EXPECT_THROW(plan_flash_attention(fused(DType::BF16, 1, 1, int64_t(1) << 31, 16, 64)), Error);
  try {
    plan_flash_attention(fused(DType::BF16, 1, 2, 16, 16, 300));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head dim 300"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

TEST(AttentionPlan, VectorizedRowsNeedWholeAlignedChunks) {
  AttentionShape s = fused(DType::BF16, 2, 4, 64, 64, 128);
  EXPECT_TRUE(flash_rows_vectorizable(s));
  EXPECT_FALSE(flash_rows_vectorizable(fused(DType::BF16, 2, 4, 64, 64, 36))) << "head dim not a multiple of 8";
  EXPECT_FALSE(flash_rows_vectorizable(fused(DType::F32, 2, 4, 64, 64, 128))) << "f32 has no cp.async path";
  AttentionShape odd_row = s;
  odd_row.k_row += 1;
  EXPECT_FALSE(flash_rows_vectorizable(odd_row));
  AttentionShape odd_batch = s;
  odd_batch.o_batch += 4;
  EXPECT_FALSE(flash_rows_vectorizable(odd_batch));
  odd_batch.batch = 1;
  EXPECT_TRUE(flash_rows_vectorizable(odd_batch)) << "a single item never steps by its batch stride";
  AttentionShape unaligned = s;
  unaligned.v_align = 8;
  EXPECT_FALSE(flash_rows_vectorizable(unaligned));
  // The scalar path still plans.
  EXPECT_FALSE(plan_flash_attention(unaligned).vectorized);
}

TEST(AttentionPlan, CudnnKeyEqualityAndHash) {
  const AttentionShape flux = fused(DType::BF16, 1, 24, 4608, 4608, 128);
  const CudnnSdpaKey a = cudnn_sdpa_key(flux, false), b = cudnn_sdpa_key(flux, false);
  EXPECT_EQ(a, b);
  EXPECT_EQ(CudnnSdpaKeyHash{}(a), CudnnSdpaKeyHash{}(b));
  EXPECT_NE(a, cudnn_sdpa_key(flux, true)) << "the padding mask is another graph";

  // Every field that changes the graph changes the key (and, here, the hash).
  std::vector<AttentionShape> variants;
  for (int field = 0; field < 13; ++field) {
    AttentionShape s = fused(DType::BF16, 2, 24, 4608, 4608, 128);
    int64_t* fields[] = {&s.batch, &s.heads, &s.lq, &s.lk, &s.head_dim, &s.q_row, &s.q_batch,
                         &s.k_row, &s.k_batch, &s.v_row, &s.v_batch, &s.o_row, &s.o_batch};
    *fields[field] += 8;
    variants.push_back(s);
  }
  std::unordered_set<CudnnSdpaKey, CudnnSdpaKeyHash> keys;
  std::unordered_set<size_t> hashes;
  keys.insert(cudnn_sdpa_key(fused(DType::BF16, 2, 24, 4608, 4608, 128), false));
  for (const AttentionShape& s : variants) {
    keys.insert(cudnn_sdpa_key(s, false));
    hashes.insert(CudnnSdpaKeyHash{}(cudnn_sdpa_key(s, false)));
  }
  EXPECT_EQ(keys.size(), variants.size() + 1);
  EXPECT_EQ(hashes.size(), variants.size());

  // A batch of one: batch strides are never followed, so they do not split the cache.
  AttentionShape view = flux, copy = flux;
  view.q_batch = 12345;
  copy.o_batch = 999;
  EXPECT_EQ(cudnn_sdpa_key(view, false), cudnn_sdpa_key(copy, false));
  EXPECT_EQ(cudnn_sdpa_key(view, false).q_batch, flux.lq * flux.q_row);
  view.batch = copy.batch = 2;
  EXPECT_NE(cudnn_sdpa_key(view, false), cudnn_sdpa_key(copy, false));
}

TEST(AttentionPlan, CudnnEligibility) {
  EXPECT_EQ(cudnn_sdpa_ineligible(fused(DType::BF16, 1, 24, 4608, 4608, 128), false), "");
  EXPECT_EQ(cudnn_sdpa_ineligible(fused(DType::BF16, 2, 40, 75600, 512, 128), true), "");  // Wan cross-attention
  EXPECT_EQ(cudnn_sdpa_ineligible(fused(DType::BF16, 2, 2, 77, 77, 48), false), "");
  EXPECT_EQ(cudnn_sdpa_ineligible(fused(DType::BF16, 2, 2, 77, 77, 256), false), "");
  EXPECT_NE(cudnn_sdpa_ineligible(fused(DType::F32, 1, 24, 64, 64, 128), false).find("bf16"), std::string::npos);
  EXPECT_NE(cudnn_sdpa_ineligible(fused(DType::BF16, 1, 2, 64, 64, 36), false), "");
  EXPECT_NE(cudnn_sdpa_ineligible(fused(DType::BF16, 1, 2, 64, 64, 264), false), "");
  EXPECT_NE(cudnn_sdpa_ineligible(fused(DType::BF16, 1, 2, 0, 64, 64), false), "");
  EXPECT_NE(cudnn_sdpa_ineligible(fused(DType::BF16, 1, 2, 64, 0, 64), false), "");
  AttentionShape s = fused(DType::BF16, 2, 2, 64, 64, 64);
  s.q_row = 3 * 128 + 4;
  EXPECT_NE(cudnn_sdpa_ineligible(s, false).find("stride"), std::string::npos);
  s = fused(DType::BF16, 2, 2, 64, 64, 64);
  s.o_align = 4;
  EXPECT_NE(cudnn_sdpa_ineligible(s, false).find("aligned"), std::string::npos);
  const AttentionShape many = fused(DType::BF16, kCudnnMaxBatch + 1, 2, 64, 64, 64);
  EXPECT_EQ(cudnn_sdpa_ineligible(many, false), "");
  EXPECT_NE(cudnn_sdpa_ineligible(many, true), "") << "more kv lengths than the device buffer holds";
}

}  // namespace
}  // namespace ditrun::kernels::cuda_plan
