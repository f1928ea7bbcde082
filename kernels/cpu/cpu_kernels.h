// The CPU kernels: one free function per Backend op (runtime/backend/backend.h states the
// semantics of each), working on f32 Tensors in host memory, views included (column slices,
// row ranges, batch strides). The CPU backend is a thin layer over these; they are also the
// reference that the CUDA kernels are tested against.
//
// Threads. Every kernel parallelises itself over at most `CpuContext::threads` threads from
// one process-wide worker pool, and calls OpenBLAS single-threaded inside (see
// use_single_threaded_blas). Weights arrive as core Weights, still in their storage type.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/core/tensor.h"
#include "runtime/core/volume.h"
#include "runtime/core/weight.h"

namespace ditrun::kernels::cpu {

struct CpuContext {
  int threads = 1;          // threads an op may use, the calling thread included
  bool round_bf16 = false;  // BF16 precision: outputs rounded to bf16 values, linear's operands too
};

// Sets OpenBLAS to one thread (a process-wide setting). The kernels parallelise themselves:
// single-threaded GEMMs over disjoint output columns, one per core, run as fast as one
// OpenBLAS call with its own threads (98% on the 2-core build machine) and let each thread
// decode its own weight chunk; attention needs many small GEMMs in parallel, which a
// multi-threaded OpenBLAS would serialise or run on oversubscribed cores. linear and
// attention call this on entry, so other OpenBLAS users in the process get one thread after
// the first GEMM kernel unless they set more themselves (safe: the next kernel resets it).
void use_single_threaded_blas();

// y[b, l, :] = x[b, l, :] · Wᵀ (+ bias); W is [N, K] in any storage type. x and y may be
// column or row views. Weights are decoded in bounded chunks of rows (F32 weights without
// scales are used in place). In BF16 mode x and the decoded W are rounded to bf16 first.
void linear(const CpuContext& ctx, const Tensor& x, const Weight& w, const Weight* bias, Tensor& y);

// Layer norm over the last dim (eps inside the square root, as PyTorch), optionally affine.
void layer_norm(const CpuContext& ctx, const Tensor& x, Tensor& y, float eps, const Weight* gamma,
                const Weight* beta);
// adaLN: y = LN(x) · (1 + mod[b, scale_chunk, :]) + mod[b, shift_chunk, :]; mod [B or 1, n, C].
void layer_norm_modulate(const CpuContext& ctx, const Tensor& x, const Tensor& mod, int shift_chunk,
                         int scale_chunk, float eps, Tensor& y);
// RMS norm of every `group` consecutive columns, times scale [group]. y may alias x.
void rms_norm(const CpuContext& ctx, const Tensor& x, Tensor& y, const Weight& scale, int64_t group, float eps);

// Rotary embedding in place: pairs (2p, 2p+1) of every head rotated by table[b, l, 2p..2p+1]
// = (cos, sin); table [B or 1, L, D].
void rope(const CpuContext& ctx, Tensor& x, const Tensor& table, int64_t heads);

// Streaming-softmax attention per batch item and head, scale 1/sqrt(D); kv_lens (empty or
// one per batch item) masks keys at and after that length (length 0 gives zeros). `lse`
// (optional, contiguous [B, Lq, H] f32) receives each row's log-sum-exp of the scaled scores
// (−inf with no keys).
void attention(const CpuContext& ctx, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
               int64_t heads, std::span<const int64_t> kv_lens, Tensor* lse = nullptr);
// attention with the scores scale·q·kᵀ + bias[b or 0, h·Lq + i, j]: T5's relative position
// bias, which has no 1/sqrt(D) (scale 1); `scale_or_zero` 0 means 1/sqrt(D), `bias` null none.
void attention_biased(const CpuContext& ctx, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                      int64_t heads, float scale_or_zero, const Tensor* bias, std::span<const int64_t> kv_lens,
                      Tensor* lse = nullptr);

void gelu_tanh(const CpuContext& ctx, const Tensor& x, Tensor& y);  // y may alias x
void gelu(const CpuContext& ctx, const Tensor& x, Tensor& y);       // exact: ½·x·(1 + erf(x/√2)); y may alias x
void silu(const CpuContext& ctx, const Tensor& x, Tensor& y);       // y may alias x
void quick_gelu(const CpuContext& ctx, const Tensor& x, Tensor& y); // x·sigmoid(1.702·x) (CLIP); y may alias x

// y = a ⊙ b, elementwise (same layout). y may alias a.
void mul(const CpuContext& ctx, const Tensor& a, const Tensor& b, Tensor& y);
// y = a + b, b's batch may be 1 (broadcast). y may alias a.
void add(const CpuContext& ctx, const Tensor& a, const Tensor& b, Tensor& y);
// x += mod[b, gate_chunk, :] · y; mod [B or 1, n, C].
void gated_add(const CpuContext& ctx, Tensor& x, const Tensor& y, const Tensor& mod, int gate_chunk);
// dst = src (same batch, rows and cols; any views). An exact copy: no rounding.
void copy(const CpuContext& ctx, const Tensor& src, Tensor& dst);
// Rounds every element to the nearest bfloat16 value (ties to even), in place.
void round_to_bf16(const CpuContext& ctx, Tensor& t);
// The weight's real values into `out` (a tensor with the weight's element count); rounded
// to bf16 in BF16 mode.
void dequantize(const CpuContext& ctx, const Weight& w, Tensor& out);

// ---- the convolutional ops of the VAEs: activations [B, T·H·W, C] over a Volume (volume.h)

// y = conv(x) + bias with W [C_out, C_in, kt, kh, kw] (or [C_out, C_in, kh, kw]) in any
// storage type: patches gathered in W's column order (c_in, kt, kh, kw) into a bounded
// scratch, a chunk of output positions at a time, then `linear` (so weights are decoded as in
// every GEMM and the scratch stays small whatever the resolution). y [B, out volume, C_out].
void conv3d(const CpuContext& ctx, const Tensor& x, const Volume& in, const Weight& w, const Weight* bias,
            const ConvSpec& spec, Tensor& y);
// Group norm over all positions and the C/groups channels of each group, per batch item
// (eps inside the square root, as PyTorch), affine with gamma/beta [C]. y may alias x.
void group_norm(const CpuContext& ctx, const Tensor& x, Tensor& y, int64_t groups, float eps, const Weight& gamma,
                const Weight& beta);
// Nearest ×2 in height and width, per frame: y[t, 2h+i, 2w+j] = x[t, h, w].
void upsample2x(const CpuContext& ctx, const Tensor& x, const Volume& in, Tensor& y);
// Wan 2.2's AvgDown3D: zero frames in front up to a multiple of ft, each ft×fs×fs
// neighbourhood folded into channels (c·F + a·fs² + b·fs + d, F = ft·fs²), then the mean of
// consecutive groups of C·F/C_out channels; y [B, (T'/ft)·(H/fs)·(W/fs), C_out].
void avg_down3d(const CpuContext& ctx, const Tensor& x, const Volume& in, int64_t ft, int64_t fs, Tensor& y);
// Wan 2.2's DupUp3D: each channel repeated C_out·F/C_in times, channel o·F + a·fs² + b·fs + d
// unfolded to time offset a, row b, column d, and the first `drop_front` frames dropped;
// y [B, (T·ft − drop_front)·(H·fs)·(W·fs), C_out].
void dup_up3d(const CpuContext& ctx, const Tensor& x, const Volume& in, int64_t ft, int64_t fs, int64_t drop_front,
              Tensor& y);

}  // namespace ditrun::kernels::cpu
