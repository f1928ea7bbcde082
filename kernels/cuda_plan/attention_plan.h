// How the CUDA backend computes attention, decided on the host: the tiles and launch geometry
// of the own flash kernels (bf16 on tensor cores, f32 on the SIMT cores), and when cuDNN's
// fused SDPA may take a call, with the key its plans are cached under. Plain C++ (no CUDA
// headers): unit-tested without a GPU. The kernels take their tile constants from here
// (constexpr), so the shared memory a launch asks for is the shared memory the kernel uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/cuda_plan/launch_geometry.h"
#include "runtime/core/dtype.h"

namespace ditrun::kernels::cuda_plan {

// One attention call as the kernels see it: q [batch, lq, heads·head_dim], k and v
// [batch, lk, heads·head_dim], out like q; strides in elements.
struct AttentionShape {
  DType dtype = DType::BF16;
  int64_t batch = 1, heads = 1, lq = 0, lk = 0, head_dim = 0;
  int64_t q_row = 0, q_batch = 0, k_row = 0, k_batch = 0, v_row = 0, v_batch = 0, o_row = 0, o_batch = 0;
  // Largest power of two dividing each base address, capped at 16 (see address_alignment).
  int q_align = 16, k_align = 16, v_align = 16, o_align = 16;
};

// Largest power of two dividing `address`, capped at 16 (the widest load the kernels use).
int address_alignment(uint64_t address);

// ---- own flash kernels

inline constexpr int kFlashMaxHeadDim = 256;  // the bf16 kernel's (and cuDNN's)
inline constexpr int kF32MaxHeadDim = 512;    // the f32 kernel's: the VAEs' single-head mid blocks (384, 512)
inline constexpr int kFlashMaxKvLens = 64;                // kv lengths one launch carries by value
inline constexpr int64_t kMaxSharedBytesPerBlock = 227 * 1024;  // Hopper's opt-in limit

// Head dims are padded to one of four buckets (64, 128, 256, 512) with zero columns in shared
// memory, which leaves q·k and p·v exact: 32 and 48 run as 64. 0 when above 512 or below 1.
// The bf16 kernel takes buckets up to 256; the f32 kernel all four.
constexpr int head_dim_bucket(int64_t head_dim) {
  return head_dim < 1     ? 0
         : head_dim <= 64  ? 64
         : head_dim <= 128 ? 128
         : head_dim <= 256 ? 256
         : head_dim <= 512 ? 512
                           : 0;
}

// The bf16 kernel's tile for one bucket. Each warp owns m_tiles·16 query rows for the whole
// kernel (its O accumulator stays in registers); K/V tiles of kv_tile keys pass through
// `stages` shared-memory buffers (cp.async double buffering). Q stays in shared memory and is
// re-read per key tile, which keeps registers for the accumulators (no spills at D=256).
struct Bf16Tile {
  int head_dim = 0, warps = 0, m_tiles = 0, kv_tile = 0, stages = 0;
  constexpr int q_tile() const { return warps * m_tiles * 16; }
  constexpr int threads() const { return warps * 32; }
  // Q, then `stages` K tiles, then `stages` V tiles, rows of head_dim bf16.
  constexpr int64_t q_bytes() const { return int64_t(q_tile()) * head_dim * 2; }
  constexpr int64_t kv_stage_bytes() const { return int64_t(kv_tile) * head_dim * 2; }
  constexpr int64_t shared_bytes() const { return q_bytes() + 2 * stages * kv_stage_bytes(); }
};

// Registers (ptxas, sm_90a, nvcc 13.0): 64 -> 167, 128 -> 255 (FA2's 128x64 tile, two m-tiles per
// warp, at the limit without spills), 256 -> 211. If a change makes 128 spill, {128, 4, 1, 64, 2}
// needs ~150 registers at the cost of re-reading each K/V fragment per 16 query rows.
constexpr Bf16Tile bf16_tile(int bucket) {
  return bucket == 64    ? Bf16Tile{64, 4, 2, 64, 2}
         : bucket == 128 ? Bf16Tile{128, 4, 2, 64, 2}
         : bucket == 256 ? Bf16Tile{256, 4, 1, 32, 2}
                         : Bf16Tile{};
}

// The f32 kernel's tile: q_tile query rows per block, 4 threads per row; each thread holds
// head_dim/4 accumulator columns and 8 of the kv_tile scores of its row. Shared memory: Q and
// K with rows padded by 4 floats (conflict-free float4 reads across rows), V, and the
// probabilities P [q_tile][kv_tile + 1].
struct F32Tile {
  int head_dim = 0, q_tile = 32, kv_tile = 32, threads = 128;
  constexpr int qk_pitch() const { return head_dim + 4; }
  constexpr int p_pitch() const { return kv_tile + 1; }
  constexpr int64_t q_floats() const { return int64_t(q_tile) * qk_pitch(); }
  constexpr int64_t k_floats() const { return int64_t(kv_tile) * qk_pitch(); }
  constexpr int64_t v_floats() const { return int64_t(kv_tile) * head_dim; }
  constexpr int64_t p_floats() const { return int64_t(q_tile) * p_pitch(); }
  constexpr int64_t shared_bytes() const { return 4 * (q_floats() + k_floats() + v_floats() + p_floats()); }
};

// 32 query rows per block; 16 at 512, so that the tile fits the 163 KiB of an A100's block too.
constexpr F32Tile f32_tile(int bucket) {
  return bucket == 512 ? F32Tile{bucket, 16, 32, 64} : bucket ? F32Tile{bucket, 32, 32, 128} : F32Tile{};
}

// Whether every row of q, k, v and out starts 16-byte aligned with whole 16-byte chunks per
// head (bf16: head dim, strides and head offsets multiples of 8 elements, bases 16-aligned).
// Then the bf16 kernel loads with 16-byte cp.async; otherwise element by element.
bool flash_rows_vectorizable(const AttentionShape& s);

// Launch geometry of one flash call: grid (q tiles, heads, batch items of one launch); a call
// with more batch items than kFlashMaxKvLens is split into launches of batch_per_launch.
struct FlashPlan {
  DType dtype = DType::BF16;
  int bucket = 0;           // padded head dim
  bool vectorized = false;  // bf16 only: 16-byte cp.async rows
  int threads = 0, q_tile = 0, kv_tile = 0;
  int64_t shared_bytes = 0;
  int64_t grid_x = 0, grid_y = 0;  // q tiles, heads
  int64_t batch_per_launch = 0;    // grid_z of every launch but maybe the last
  int64_t launches = 0;
};

// The plan for a call of F32 or BF16; fails with a one-line Error naming the shape when the
// kernels cannot take it (head dim above 256, more than 65535 heads, token counts beyond int32).
FlashPlan plan_flash_attention(const AttentionShape& s);

// ---- cuDNN fused SDPA (CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR)

inline constexpr int kCudnnMaxHeadDim = 256;
inline constexpr int64_t kCudnnMaxBatch = 256;  // capacity of the device sequence-length arrays

// What a cached cuDNN plan depends on. Pointers are not part of it (they are bound per call),
// but their alignment is an eligibility rule. A batch of one has its batch strides normalized,
// so views that differ only there share a plan.
struct CudnnSdpaKey {
  DType dtype = DType::BF16;
  int64_t batch = 0, heads = 0, lq = 0, lk = 0, head_dim = 0;
  int64_t q_row = 0, q_batch = 0, k_row = 0, k_batch = 0, v_row = 0, v_batch = 0, o_row = 0, o_batch = 0;
  bool padding_mask = false;  // kv lengths given: SEQ_LEN_Q / SEQ_LEN_KV tensors in the graph
  bool operator==(const CudnnSdpaKey&) const = default;
};

struct CudnnSdpaKeyHash {
  size_t operator()(const CudnnSdpaKey& key) const noexcept;
};

CudnnSdpaKey cudnn_sdpa_key(const AttentionShape& s, bool padding_mask);

// Why cuDNN's SDPA cannot take this call, in one line; empty when the rules allow it (the
// engine may still refuse: see CudnnAttention::supports). Rules: bf16; head dim a multiple of
// 8 and at most 256; every stride a multiple of 8 elements and every base 16-byte aligned
// (the tensors are declared 16-byte aligned); at least one query and one key; with a padding
// mask, at most kCudnnMaxBatch batch items.
std::string cudnn_sdpa_ineligible(const AttentionShape& s, bool padding_mask);

}  // namespace ditrun::kernels::cuda_plan
