// flash attention on bf16 tensor cores, after FlashAttention-2 (Dao, 2023): one block per
// (query tile, head, batch item); each warp owns m_tiles·16 query rows and keeps their
// output accumulator (f32) and softmax statistics in registers while the block walks the
// keys in tiles. Per key tile: S = Q·Kᵀ with mma.sync m16n8k16 (bf16 in, f32 out), an online
// softmax in the exp2 domain (scale·log2e folded in), then O += P·V with P rounded to bf16
// straight from the S accumulators (the m16n8 C layout of two adjacent n-tiles is the A
// layout of one k16 step). K and V tiles are double-buffered with cp.async; shared-memory
// rows are XOR-swizzled by 16-byte chunk so ldmatrix reads are free of bank conflicts.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16", "ldmatrix"), with
// g = lane / 4 and t = lane % 4:
//   A (16x16, row): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//   B (16x8, col):  b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g)
//   C (16x8, f32):  c0,c1 = (g, 2t..2t+1), c2,c3 = (g+8, 2t..2t+1)
//   ldmatrix.x4: lanes 8i..8i+7 give the row addresses of matrix i; register i of a lane then
//   holds row lane/4, columns 2t..2t+1 of matrix i (with .trans: rows 2t..2t+1, column lane/4).
// Head dims below the bucket are zero columns in shared memory (exact), rows past the query
// or key count are zero rows, keys past the count are masked to -inf before the softmax.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention_kernels.h"

namespace ditrun::kernels::cuda::detail {
namespace {

using cuda_plan::Bf16Tile;
using cuda_plan::FlashPlan;

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define DITRUN_FLASH_SM80 1
#endif

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

#if DITRUN_FLASH_SM80
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(__cvta_generic_to_global(src))
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}
__device__ __forceinline__ void st_shared_v4(uint32_t dst, uint32_t x, uint32_t y, uint32_t z, uint32_t w) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst), "r"(x), "r"(y), "r"(z), "r"(w) : "memory");
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
// d += a·b on one 16x8x16 tile, bf16 operands, f32 accumulation (not volatile: a pure register
// operation the compiler may schedule freely).
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

// Two floats as one bf16x2 register, `lo` in the low half (the lower column / key).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t bf16_bits(const __nv_bfloat16* p) {
  return *reinterpret_cast<const uint16_t*>(p);
}

// Byte offset of 16-byte chunk `chunk` of row `row` in a tile of rows of D bf16: chunks are
// XOR-swizzled with the row's low three bits, so the 8 rows one ldmatrix matrix reads (same
// logical chunk) land in 8 different bank groups.
template <int D>
__device__ __forceinline__ uint32_t tile_offset(int row, int chunk) {
  static_assert(D / 8 >= 8, "the swizzle permutes groups of 8 chunks");
  return uint32_t(row * (D * 2) + ((chunk ^ (row & 7)) << 4));
}

#if DITRUN_FLASH_SM80
// Rows [0, kRows) of a tile from global rows src + r·stride (columns [0, d)); rows at and past
// `valid` and columns at and past d become zeros. kVec: 16-byte cp.async per chunk (needs
// 16-byte aligned rows and d a multiple of 8); otherwise element loads and a shared store.
// A thread copies one chunk column of every kStep-th row, so its addresses advance by
// constants (few live registers across the key loop).
template <int D, int kRows, int kThreads, bool kVec>
__device__ __forceinline__ void load_tile(uint32_t dst, const __nv_bfloat16* src, int64_t stride, int valid, int d) {
  constexpr int kChunks = D / 8, kStep = kThreads / kChunks;
  static_assert(kThreads % kChunks == 0 && kRows % kStep == 0, "every thread copies the same number of chunks");
  const int c = int(threadIdx.x) % kChunks, r0 = int(threadIdx.x) / kChunks, col = c * 8;
  const __nv_bfloat16* p = src + int64_t(r0) * stride + col;
  const int64_t step = int64_t(kStep) * stride;
#pragma unroll
  for (int it = 0; it < kRows / kStep; ++it, p += step) {
    const int r = r0 + it * kStep;
    const uint32_t at = dst + tile_offset<D>(r, c);
    if (r < valid && col < d) {
      if constexpr (kVec) {
        cp_async_16(at, p);
      } else {
        uint32_t w[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const uint32_t lo = col + 2 * e < d ? bf16_bits(p + 2 * e) : 0u;
          const uint32_t hi = col + 2 * e + 1 < d ? bf16_bits(p + 2 * e + 1) : 0u;
          w[e] = lo | (hi << 16);
        }
        st_shared_v4(at, w[0], w[1], w[2], w[3]);
      }
    } else {
      st_shared_v4(at, 0u, 0u, 0u, 0u);
    }
  }
}
#endif

template <int D, bool kVec>
__global__ void __launch_bounds__(cuda_plan::bf16_tile(D).threads()) flash_bf16_kernel(const FlashArgs a) {
#if DITRUN_FLASH_SM80
  constexpr Bf16Tile kT = cuda_plan::bf16_tile(D);
  constexpr int kM = kT.m_tiles, kKv = kT.kv_tile, kRows = kT.q_tile(), kThreads = kT.threads();
  static_assert(kT.stages == 2, "the key loop double-buffers");
  static_assert(kKv % 16 == 0 && D % 16 == 0, "whole k16 steps");
  using bf16 = __nv_bfloat16;

  extern __shared__ __align__(16) unsigned char smem[];
  const uint32_t s_q = shared_address(smem);
  const uint32_t s_k = s_q + uint32_t(kT.q_bytes());
  const uint32_t s_v = s_k + uint32_t(kT.stages * kT.kv_stage_bytes());
  constexpr uint32_t kStageBytes = uint32_t(kT.kv_stage_bytes());

  const int row0 = int(blockIdx.x) * kRows, head = int(blockIdx.y), item = int(blockIdx.z);
  const int q_rows = min(kRows, a.lq - row0);
  const int keys = a.kv.count ? a.kv.len[item] : a.lk;
  const int d = a.head_dim;
  const int64_t col0 = int64_t(head) * d;
  const bf16* q = static_cast<const bf16*>(a.q) + item * a.q_batch + int64_t(row0) * a.q_row + col0;
  const bf16* k = static_cast<const bf16*>(a.k) + item * a.k_batch + col0;
  const bf16* v = static_cast<const bf16*>(a.v) + item * a.v_batch + col0;
  bf16* o = static_cast<bf16*>(a.out) + item * a.o_batch + int64_t(row0) * a.o_row + col0;

  if (keys <= 0) {  // no keys: zeros, as the CPU twin
    for (int i = int(threadIdx.x); i < q_rows * d; i += kThreads) o[int64_t(i / d) * a.o_row + i % d] = bf16(0.0f);
    return;
  }

  load_tile<D, kRows, kThreads, kVec>(s_q, q, a.q_row, q_rows, d);
  cp_async_commit();
  load_tile<D, kKv, kThreads, kVec>(s_k, k, a.k_row, keys, d);
  load_tile<D, kKv, kThreads, kVec>(s_v, v, a.v_row, keys, d);
  cp_async_commit();

  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int g = lane >> 2, t = lane & 3;
  const int warp_row0 = warp * kM * 16;
  const float neg_inf = __int_as_float(0xff800000);

  // ldmatrix row addresses. Lanes 8i..8i+7 address matrix i: Q and V take (bit 3 of the lane)
  // as row +8 and (bit 4) as chunk +1; K takes bit 3 as chunk +1 and bit 4 as key +8. Every row
  // is r0 + (lane & 7) (+ 8) with r0 a multiple of 8, so its swizzle is lane & 7, and chunk
  // 2ks + bit lands at byte (((2(ks & 3) + bit) ^ (lane & 7)) << 4) + (ks >> 2)·128 of the row:
  // four per-lane bases per operand, the rest immediates.
  constexpr uint32_t kRowBytes = D * 2;
  const int x = lane & 7, bit3 = (lane >> 3) & 1, bit4 = lane >> 4;
  const uint32_t q_row = uint32_t(warp_row0 + (x | (bit3 << 3))) * kRowBytes;
  const uint32_t k_row = uint32_t(x | (bit4 << 3)) * kRowBytes;
  const uint32_t v_row = uint32_t(x | (bit3 << 3)) * kRowBytes;
  uint32_t q_base[4], k_base[4], v_base[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    q_base[i] = s_q + q_row + uint32_t(((2 * i + bit4) ^ x) << 4);
    k_base[i] = s_k + k_row + uint32_t(((2 * i + bit3) ^ x) << 4);
    v_base[i] = s_v + v_row + uint32_t(((2 * i + bit4) ^ x) << 4);
  }

  float acc[kM][D / 8][4];
  float row_max[kM][2], row_sum[kM][2];  // raw-score max; this thread's part of the exp sum
#pragma unroll
  for (int mt = 0; mt < kM; ++mt) {
#pragma unroll
    for (int dn = 0; dn < D / 8; ++dn)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[mt][dn][i] = 0.0f;
    row_max[mt][0] = row_max[mt][1] = neg_inf;
    row_sum[mt][0] = row_sum[mt][1] = 0.0f;
  }

  const int tiles = (keys + kKv - 1) / kKv;
  for (int j = 0; j < tiles; ++j) {
    const uint32_t stage = uint32_t(j & 1) * kStageBytes;
    if (j + 1 < tiles) {
      const uint32_t next = uint32_t((j + 1) & 1) * kStageBytes;
      const int64_t key_next = int64_t(j + 1) * kKv;
      const int valid_next = keys - (j + 1) * kKv;
      load_tile<D, kKv, kThreads, kVec>(s_k + next, k + key_next * a.k_row, a.k_row, valid_next, d);
      load_tile<D, kKv, kThreads, kVec>(s_v + next, v + key_next * a.v_row, a.v_row, valid_next, d);
      cp_async_commit();
      cp_async_wait<1>();  // everything but the tile just issued has landed
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();

    // S = Q·Kᵀ for this warp's rows and the tile's kKv keys.
    float s[kM][kKv / 8][4];
#pragma unroll
    for (int mt = 0; mt < kM; ++mt)
#pragma unroll
      for (int nt = 0; nt < kKv / 8; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) s[mt][nt][i] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      if (ks * 16 >= d) break;  // zero columns of the bucket's padding
      uint32_t qa[kM][4];
#pragma unroll
      for (int mt = 0; mt < kM; ++mt)  // matrices: rows 0-7 / 8-15 x cols 0-7, then x cols 8-15
        ldmatrix_x4(qa[mt], q_base[ks & 3] + uint32_t((ks >> 2) * 128 + mt * 16 * kRowBytes));
#pragma unroll
      for (int np = 0; np < kKv / 16; ++np) {
        // matrices: keys 0-7 x dims 0-7, keys 0-7 x dims 8-15, keys 8-15 x dims 0-7, keys 8-15 x dims 8-15
        uint32_t kb[4];
        ldmatrix_x4(kb, k_base[ks & 3] + stage + uint32_t((ks >> 2) * 128 + np * 16 * kRowBytes));
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          mma_bf16(s[mt][2 * np], qa[mt], kb[0], kb[1]);
          mma_bf16(s[mt][2 * np + 1], qa[mt], kb[2], kb[3]);
        }
      }
    }

    const int key0 = j * kKv;
    if (key0 + kKv > keys) {  // the last tile: keys past the count drop out of the softmax
#pragma unroll
      for (int mt = 0; mt < kM; ++mt)
#pragma unroll
        for (int nt = 0; nt < kKv / 8; ++nt)
#pragma unroll
          for (int i = 0; i < 4; ++i)
            if (key0 + nt * 8 + 2 * t + (i & 1) >= keys) s[mt][nt][i] = neg_inf;
    }

    // Online softmax per row (h = 0: row g, h = 1: row g + 8). Every tile holds at least one
    // unmasked key, so the new max is finite; the first correction is exp2(-inf) = 0.
#pragma unroll
    for (int mt = 0; mt < kM; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float mx = row_max[mt][h];
#pragma unroll
        for (int nt = 0; nt < kKv / 8; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * h], s[mt][nt][2 * h + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 1));  // the 4 threads of a row
        mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 2));
        const float correction = exp2f((row_max[mt][h] - mx) * a.scale_log2);
        row_max[mt][h] = mx;
        const float shift = mx * a.scale_log2;
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kKv / 8; ++nt)
#pragma unroll
          for (int i = 2 * h; i < 2 * h + 2; ++i) {
            const float p = exp2f(fmaf(s[mt][nt][i], a.scale_log2, -shift));
            s[mt][nt][i] = p;
            sum += p;
          }
        row_sum[mt][h] = row_sum[mt][h] * correction + sum;
#pragma unroll
        for (int dn = 0; dn < D / 8; ++dn) {
          acc[mt][dn][2 * h] *= correction;
          acc[mt][dn][2 * h + 1] *= correction;
        }
      }
    }

    // O += P·V: P's A fragments come from the S accumulators of n-tiles 2kk and 2kk+1.
#pragma unroll
    for (int kk = 0; kk < kKv / 16; ++kk) {
      uint32_t pa[kM][4];
#pragma unroll
      for (int mt = 0; mt < kM; ++mt) {
        pa[mt][0] = pack_bf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pa[mt][1] = pack_bf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pa[mt][2] = pack_bf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pa[mt][3] = pack_bf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        if (dp * 16 >= d) break;  // output columns of the padding are never stored
        // matrices (.trans): keys 0-7 x dims 0-7, keys 8-15 x dims 0-7, keys 0-7 x dims 8-15, keys 8-15 x dims 8-15
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, v_base[dp & 3] + stage + uint32_t((dp >> 2) * 128 + kk * 16 * kRowBytes));
#pragma unroll
        for (int mt = 0; mt < kM; ++mt) {
          mma_bf16(acc[mt][2 * dp], pa[mt], vb[0], vb[1]);
          mma_bf16(acc[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
        }
      }
    }
    __syncthreads();  // the next iteration prefetches into this stage
  }

#pragma unroll
  for (int mt = 0; mt < kM; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float total = row_sum[mt][h];
      total += __shfl_xor_sync(0xFFFFFFFFu, total, 1);
      total += __shfl_xor_sync(0xFFFFFFFFu, total, 2);
      const float inv = 1.0f / total;
      const int r = warp_row0 + mt * 16 + g + 8 * h;
      if (r >= q_rows) continue;
      bf16* dst = o + int64_t(r) * a.o_row;
#pragma unroll
      for (int dn = 0; dn < D / 8; ++dn) {
        const int c = dn * 8 + 2 * t;
        if (c >= d) break;
        const float x = acc[mt][dn][2 * h] * inv, y = acc[mt][dn][2 * h + 1] * inv;
        if constexpr (kVec) {
          *reinterpret_cast<__nv_bfloat162*>(dst + c) = __floats2bfloat162_rn(x, y);
        } else {
          dst[c] = __float2bfloat16_rn(x);
          if (c + 1 < d) dst[c + 1] = __float2bfloat16_rn(y);
        }
      }
    }
#else
  __trap();  // compiled for sm_80 and later only (mma.sync bf16, ldmatrix, cp.async)
#endif
}

template <int D, bool kVec>
cudaError_t launch(const FlashPlan& plan, const FlashArgs& args, int64_t items, cudaStream_t stream) {
  constexpr Bf16Tile kT = cuda_plan::bf16_tile(D);
  if (plan.shared_bytes != kT.shared_bytes() || plan.threads != kT.threads()) return cudaErrorInvalidConfiguration;
  const auto kernel = flash_bf16_kernel<D, kVec>;
  if (const cudaError_t err =
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kT.shared_bytes()));
      err != cudaSuccess)
    return err;
  const dim3 grid(unsigned(plan.grid_x), unsigned(plan.grid_y), unsigned(items));
  kernel<<<grid, kT.threads(), size_t(kT.shared_bytes()), stream>>>(args);
  return cudaGetLastError();
}

template <int D>
cudaError_t launch_bucket(const FlashPlan& plan, const FlashArgs& args, int64_t items, cudaStream_t stream) {
  return plan.vectorized ? launch<D, true>(plan, args, items, stream) : launch<D, false>(plan, args, items, stream);
}

}  // namespace

cudaError_t launch_flash_bf16(const FlashPlan& plan, const FlashArgs& args, int64_t items, cudaStream_t stream) {
  switch (plan.bucket) {
    case 64: return launch_bucket<64>(plan, args, items, stream);
    case 128: return launch_bucket<128>(plan, args, items, stream);
    case 256: return launch_bucket<256>(plan, args, items, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace ditrun::kernels::cuda::detail
