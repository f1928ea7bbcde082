// attention in f32 on the SIMT cores: the CUDA backend's f32 mode, which must reproduce the
// CPU backend (kernels/cpu/attention.cpp) to ~1e-6 relative, so it follows the CPU's
// arithmetic: s = scale·(q·k) in f32, a running max m and sum l per row, the accumulator
// rescaled by exp(m_old - m_new), p = exp(s - m_new) (expf, not the fast __expf), out = O·(1/l).
//
// Block = (32-query tile, head, batch item), 128 threads, 4 per query row. Per tile of 32 keys:
// K and V are staged in shared memory; each thread scores 8 keys of its row (keys t%4 + 4i),
// the row's 4 threads combine max and sum by shuffles, write P to shared memory, and each
// thread then adds P·V into its quarter of the row's output columns (float4 groups at
// 4·(t%4) + 16·j). Head dims are padded to the bucket with zero columns, which changes no sum.
// With a.lse set, each row's m + ln l (the log-sum-exp of its scaled scores) is written too,
// as the CPU twin does, for ring attention's merges.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention_kernels.h"

namespace ditrun::kernels::cuda::detail {
namespace {

using cuda_plan::F32Tile;
using cuda_plan::FlashPlan;

constexpr int kRowThreads = 4;  // threads per query row
constexpr int kScoresPerThread = 8;

// Rows [0, rows) of a tile of `pitch` floats per row from src + r·stride, columns [0, d);
// rows at and past `valid` and columns at and past d are zeros.
template <int D, int kRows, int kThreads>
__device__ __forceinline__ void load_rows(float* dst, int pitch, const float* src, int64_t stride, int valid, int d) {
  for (int i = int(threadIdx.x); i < kRows * D; i += kThreads) {
    const int r = i / D, c = i % D;
    dst[r * pitch + c] = (r < valid && c < d) ? src[int64_t(r) * stride + c] : 0.0f;
  }
}

template <int D>
__global__ void __launch_bounds__(128) attention_f32_kernel(const FlashArgs a) {
  constexpr F32Tile kT = cuda_plan::f32_tile(D);
  constexpr int kRows = kT.q_tile, kKv = kT.kv_tile, kThreads = kT.threads, kQk = kT.qk_pitch(), kP = kT.p_pitch();
  static_assert(kThreads == kRows * kRowThreads && kKv == kRowThreads * kScoresPerThread, "tile shape");
  static_assert(D % (4 * kRowThreads) == 0, "whole float4 groups per thread");
  constexpr int kGroups = D / (4 * kRowThreads);  // float4 output groups per thread

  extern __shared__ __align__(16) float shared[];
  float* s_q = shared;
  float* s_k = s_q + kT.q_floats();
  float* s_v = s_k + kT.k_floats();
  float* s_p = s_v + kT.v_floats();

  const int row0 = int(blockIdx.x) * kRows, head = int(blockIdx.y), item = int(blockIdx.z);
  const int q_rows = min(kRows, a.lq - row0);
  const int keys = a.kv.count ? a.kv.len[item] : a.lk;
  const int d = a.head_dim;
  const int64_t col0 = int64_t(head) * d;
  const float* q = static_cast<const float*>(a.q) + item * a.q_batch + int64_t(row0) * a.q_row + col0;
  const float* k = static_cast<const float*>(a.k) + item * a.k_batch + col0;
  const float* v = static_cast<const float*>(a.v) + item * a.v_batch + col0;
  float* o = static_cast<float*>(a.out) + item * a.o_batch + int64_t(row0) * a.o_row + col0;

  float* lse = a.lse ? a.lse + (int64_t(item) * a.lq + row0) * a.heads + head : nullptr;  // row stride: heads
  if (keys <= 0) {
    for (int i = int(threadIdx.x); i < q_rows * d; i += kThreads) o[int64_t(i / d) * a.o_row + i % d] = 0.0f;
    if (lse)
      for (int r = int(threadIdx.x); r < q_rows; r += kThreads) lse[int64_t(r) * a.heads] = __int_as_float(0xff800000);
    return;
  }

  const int row = int(threadIdx.x) / kRowThreads, part = int(threadIdx.x) % kRowThreads;
  load_rows<D, kRows, kThreads>(s_q, kQk, q, a.q_row, q_rows, d);

  float4 acc[kGroups];
#pragma unroll
  for (int j = 0; j < kGroups; ++j) acc[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  float m = __int_as_float(0xff800000), l = 0.0f;

  for (int key0 = 0; key0 < keys; key0 += kKv) {
    __syncthreads();  // the previous tile's K, V and P are no longer read
    const int valid = min(kKv, keys - key0);
    load_rows<D, kKv, kThreads>(s_k, kQk, k + int64_t(key0) * a.k_row, a.k_row, valid, d);
    load_rows<D, kKv, kThreads>(s_v, D, v + int64_t(key0) * a.v_row, a.v_row, valid, d);
    __syncthreads();

    float s[kScoresPerThread];
#pragma unroll
    for (int i = 0; i < kScoresPerThread; ++i) s[i] = 0.0f;
    const float* q_row = s_q + row * kQk;
#pragma unroll 4
    for (int c = 0; c < D; c += 4) {
      const float4 x = *reinterpret_cast<const float4*>(q_row + c);
#pragma unroll
      for (int i = 0; i < kScoresPerThread; ++i) {
        const float4 y = *reinterpret_cast<const float4*>(s_k + (part + kRowThreads * i) * kQk + c);
        s[i] = fmaf(x.x, y.x, s[i]);
        s[i] = fmaf(x.y, y.y, s[i]);
        s[i] = fmaf(x.z, y.z, s[i]);
        s[i] = fmaf(x.w, y.w, s[i]);
      }
    }
    float mx = m;
    const float* bias_row = a.bias && row < q_rows
                                ? a.bias + item * a.bias_batch + (int64_t(head) * a.lq + row0 + row) * a.bias_row + key0
                                : nullptr;
#pragma unroll
    for (int i = 0; i < kScoresPerThread; ++i) {
      const int key = part + kRowThreads * i;
      s[i] = key < valid ? s[i] * a.scale + (bias_row ? bias_row[key] : 0.0f) : __int_as_float(0xff800000);
      mx = fmaxf(mx, s[i]);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 1));  // a row's 4 threads are adjacent lanes
    mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 2));
    const float correction = expf(m - mx);  // 0 on the first tile (m = -inf)
    m = mx;
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kScoresPerThread; ++i) {
      const float p = expf(s[i] - mx);
      s_p[row * kP + part + kRowThreads * i] = p;
      sum += p;
    }
    sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 1);
    sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 2);
    l = l * correction + sum;
#pragma unroll
    for (int j = 0; j < kGroups; ++j) {
      acc[j].x *= correction;
      acc[j].y *= correction;
      acc[j].z *= correction;
      acc[j].w *= correction;
    }
    __syncwarp();  // P of a row is written and read by the same 4 lanes of one warp

#pragma unroll 4
    for (int key = 0; key < kKv; ++key) {
      const float p = s_p[row * kP + key];
#pragma unroll
      for (int j = 0; j < kGroups; ++j) {
        const float4 y = *reinterpret_cast<const float4*>(s_v + key * D + 4 * part + 4 * kRowThreads * j);
        acc[j].x = fmaf(p, y.x, acc[j].x);
        acc[j].y = fmaf(p, y.y, acc[j].y);
        acc[j].z = fmaf(p, y.z, acc[j].z);
        acc[j].w = fmaf(p, y.w, acc[j].w);
      }
    }
  }

  if (row >= q_rows) return;
  if (lse && part == 0) lse[int64_t(row) * a.heads] = m + logf(l);
  const float inv = 1.0f / l;
  float* dst = o + int64_t(row) * a.o_row;
#pragma unroll
  for (int j = 0; j < kGroups; ++j) {
    const int c = 4 * part + 4 * kRowThreads * j;
    const float x[4] = {acc[j].x * inv, acc[j].y * inv, acc[j].z * inv, acc[j].w * inv};
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (c + e < d) dst[c + e] = x[e];
  }
}

template <int D>
cudaError_t launch(const FlashPlan& plan, const FlashArgs& args, int64_t items, cudaStream_t stream) {
  constexpr F32Tile kT = cuda_plan::f32_tile(D);
  if (plan.shared_bytes != kT.shared_bytes() || plan.threads != kT.threads) return cudaErrorInvalidConfiguration;
  const auto kernel = attention_f32_kernel<D>;
  if (const cudaError_t err =
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kT.shared_bytes()));
      err != cudaSuccess)
    return err;
  const dim3 grid(unsigned(plan.grid_x), unsigned(plan.grid_y), unsigned(items));
  kernel<<<grid, kT.threads, size_t(kT.shared_bytes()), stream>>>(args);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_flash_f32(const FlashPlan& plan, const FlashArgs& args, int64_t items, cudaStream_t stream) {
  switch (plan.bucket) {
    case 64: return launch<64>(plan, args, items, stream);
    case 128: return launch<128>(plan, args, items, stream);
    case 256: return launch<256>(plan, args, items, stream);
    case 512: return launch<512>(plan, args, items, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace ditrun::kernels::cuda::detail
