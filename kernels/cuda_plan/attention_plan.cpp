#include "kernels/cuda_plan/attention_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "runtime/core/error.h"

namespace ditrun::kernels::cuda_plan {
namespace {

std::string describe(const AttentionShape& s) {
  return fmt::format("{} q [{}, {}, {}x{}] k/v [{}, {}, {}x{}]", dtype_name(s.dtype), s.batch, s.lq, s.heads,
                     s.head_dim, s.batch, s.lk, s.heads, s.head_dim);
}

bool multiple_of(int64_t value, int64_t n) { return value % n == 0; }

// Every stride of q, k, v and out that is followed a multiple of n elements (a batch of one
// never steps by its batch stride).
bool strides_multiple_of(const AttentionShape& s, int64_t n) {
  for (int64_t stride : {s.q_row, s.k_row, s.v_row, s.o_row})
    if (!multiple_of(stride, n)) return false;
  if (s.batch > 1)
    for (int64_t stride : {s.q_batch, s.k_batch, s.v_batch, s.o_batch})
      if (!multiple_of(stride, n)) return false;
  return true;
}

int min_alignment(const AttentionShape& s) { return std::min({s.q_align, s.k_align, s.v_align, s.o_align}); }

}  // namespace

int address_alignment(uint64_t address) {
  int a = 1;
  while (a < 16 && address % uint64_t(2 * a) == 0) a *= 2;
  return a;
}

bool flash_rows_vectorizable(const AttentionShape& s) {
  if (s.dtype != DType::BF16) return false;
  return multiple_of(s.head_dim, 8) && strides_multiple_of(s, 8) && min_alignment(s) == 16;
}

FlashPlan plan_flash_attention(const AttentionShape& s) {
  if (s.dtype != DType::F32 && s.dtype != DType::BF16)
    fail("attention: {}: the CUDA kernels take f32 or bf16", describe(s));
  const int bucket = head_dim_bucket(s.head_dim);
  if (bucket == 0)
    fail("attention: {}: head dim {} outside the CUDA kernels' 1..{}", describe(s), s.head_dim, kF32MaxHeadDim);
  if (s.dtype == DType::BF16 && bucket > kFlashMaxHeadDim)
    fail("attention: {}: head dim {} is beyond the bf16 kernel's {} (the f32 kernel takes up to {})", describe(s),
         s.head_dim, kFlashMaxHeadDim, kF32MaxHeadDim);
  if (s.heads > kMaxGridYZ) fail("attention: {}: more than {} heads", describe(s), kMaxGridYZ);
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  if (s.lq > kInt32Max || s.lk > kInt32Max) fail("attention: {}: token counts beyond int32", describe(s));

  FlashPlan p;
  p.dtype = s.dtype;
  p.bucket = bucket;
  if (s.dtype == DType::BF16) {
    const Bf16Tile t = bf16_tile(bucket);
    p.vectorized = flash_rows_vectorizable(s);
    p.threads = t.threads();
    p.q_tile = t.q_tile();
    p.kv_tile = t.kv_tile;
    p.shared_bytes = t.shared_bytes();
  } else {
    const F32Tile t = f32_tile(bucket);
    p.threads = t.threads;
    p.q_tile = t.q_tile;
    p.kv_tile = t.kv_tile;
    p.shared_bytes = t.shared_bytes();
  }
  p.grid_x = blocks_for(std::max<int64_t>(s.lq, 1), p.q_tile);
  p.grid_y = std::max<int64_t>(s.heads, 1);
  p.batch_per_launch = std::min<int64_t>({std::max<int64_t>(s.batch, 1), kFlashMaxKvLens, kMaxGridYZ});
  p.launches = blocks_for(std::max<int64_t>(s.batch, 1), p.batch_per_launch);
  return p;
}

size_t CudnnSdpaKeyHash::operator()(const CudnnSdpaKey& k) const noexcept {
  // FNV-1a over the fields: a handful of plans per process, so any decent mix will do.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 1099511628211ull;
    }
  };
  mix(uint64_t(k.dtype));
  for (int64_t v : {k.batch, k.heads, k.lq, k.lk, k.head_dim, k.q_row, k.q_batch, k.k_row, k.k_batch, k.v_row,
                    k.v_batch, k.o_row, k.o_batch})
    mix(uint64_t(v));
  mix(k.padding_mask ? 1 : 0);
  return size_t(h);
}

CudnnSdpaKey cudnn_sdpa_key(const AttentionShape& s, bool padding_mask) {
  CudnnSdpaKey k;
  k.dtype = s.dtype;
  k.batch = s.batch;
  k.heads = s.heads;
  k.lq = s.lq;
  k.lk = s.lk;
  k.head_dim = s.head_dim;
  k.q_row = s.q_row;
  k.k_row = s.k_row;
  k.v_row = s.v_row;
  k.o_row = s.o_row;
  // A batch stride of a single item is never followed: give it the value a packed layout
  // would have, so that a view and a copy of it share a plan.
  const bool one = s.batch == 1;
  k.q_batch = one ? s.lq * s.q_row : s.q_batch;
  k.k_batch = one ? s.lk * s.k_row : s.k_batch;
  k.v_batch = one ? s.lk * s.v_row : s.v_batch;
  k.o_batch = one ? s.lq * s.o_row : s.o_batch;
  k.padding_mask = padding_mask;
  return k;
}

std::string cudnn_sdpa_ineligible(const AttentionShape& s, bool padding_mask) {
  if (s.dtype != DType::BF16) return fmt::format("cuDNN SDPA takes bf16 here, not {}", dtype_name(s.dtype));
  if (s.head_dim < 8 || s.head_dim > kCudnnMaxHeadDim || !multiple_of(s.head_dim, 8))
    return fmt::format("head dim {} is not a multiple of 8 in 8..{}", s.head_dim, kCudnnMaxHeadDim);
  if (s.batch < 1 || s.lq < 1 || s.lk < 1)
    return fmt::format("empty call (batch {}, {} queries, {} keys)", s.batch, s.lq, s.lk);
  if (!strides_multiple_of(s, 8)) return "a row or batch stride is not a multiple of 8 elements";
  if (min_alignment(s) < 16) return "a tensor does not start 16-byte aligned";
  if (padding_mask && s.batch > kCudnnMaxBatch)
    return fmt::format("{} batch items with kv lengths, above the {} the sequence-length buffer holds", s.batch,
                       kCudnnMaxBatch);
  return {};
}

}  // namespace ditrun::kernels::cuda_plan
