// Helpers shared by the CPU kernel files (not part of the kernels' API): the worker pool,
// argument checks that produce the one-line errors, bf16 rounding and a vectorisable exp.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"

namespace ditrun::kernels::cpu::detail {

// ---- threads

// Runs task(i) for every i in [0, n) on at most `threads` threads (the caller included), the
// items handed out one at a time. A process-wide pool of persistent workers, rather than
// threads started per call (parallel_for): an op costs microseconds, not a thread start, and
// the workers' thread_local scratch buffers (decoded weight chunks, attention tiles) survive
// from one op to the next. A call made while the pool is busy (another host thread, or from
// inside a task) runs its items serially on the caller: correct, and no oversubscription.
void run_tasks(int threads, int64_t n, const std::function<void(int64_t)>& task);

// fn(begin, end) over [0, n) in up to ctx.threads contiguous chunks of at least `grain`.
template <class Fn>
void parallel_chunks(const CpuContext& ctx, int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  const int64_t chunks = std::min<int64_t>(std::max(ctx.threads, 1), std::max<int64_t>(1, n / std::max<int64_t>(grain, 1)));
  if (chunks <= 1) {
    fn(int64_t(0), n);
    return;
  }
  run_tasks(int(chunks), chunks, [&](int64_t c) { fn(n * c / chunks, n * (c + 1) / chunks); });
}

// fn(b, r) for every row of a [batch][rows] view, split so that a chunk holds at least
// ~16k elements (smaller ops are not worth waking a worker for).
template <class Fn>
void parallel_rows(const CpuContext& ctx, int64_t batch, int64_t rows, int64_t cols, Fn&& fn) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1));
  parallel_chunks(ctx, batch * rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(i / rows, i % rows);
  });
}

// ---- checks (each failure is one line naming the op and the shapes)

// A defined f32 tensor in host memory.
void check_host_f32(std::string_view op, std::string_view role, const Tensor& t);
// Same batch, rows and cols (the Tensor view's logical layout).
bool same_layout(const Tensor& a, const Tensor& b);
void check_same_layout(std::string_view op, std::string_view role_a, const Tensor& a, std::string_view role_b,
                       const Tensor& b);
// Row `chunk` of mod [B or 1, n, C] for batch item b of a tensor with `batch` items and C columns.
void check_mod(std::string_view op, const Tensor& mod, int chunk, int64_t batch, int64_t cols);
inline const float* mod_row(const Tensor& mod, int64_t b, int chunk) {
  return mod.row<const float>(mod.batch() == 1 ? 0 : b, chunk);
}

// A small parameter (bias, gamma, beta, norm scale) as f32 values, checked to hold `count`
// values; rounded to bf16 when `round` is set.
std::vector<float> param_values(std::string_view op, std::string_view role, const Weight& w, int64_t count,
                                std::string_view expected, bool round);

// ---- arithmetic

// Nearest bfloat16 value, ties to even; NaN stays NaN (the bits of f32_to_bf16, branch-free
// so that loops over it vectorise).
inline float round_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t rounded = (x + 0x7FFFu + ((x >> 16) & 1u)) & 0xFFFF0000u;
  const uint32_t nan = (x | 0x00400000u) & 0xFFFF0000u;
  return std::bit_cast<float>((x & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}
inline void round_bf16(float* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = round_bf16(p[i]);
}

// e^x with relative error below 2e-7 on [-87, 88]; arguments are clamped to that range, so
// the result is finite and > 0 (e^-inf gives ~1e-38, not 0: harmless where it is summed
// with values near 1, as in softmax). The scalar definition; exp_inplace is the fast one.
inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // x = n·ln2 + r, |r| <= ln2/2: n rounded to nearest by adding 1.5·2^23, ln2 split in two
  // parts so that n·ln2_hi is exact.
  const float shifted = x * 1.44269504f + 12582912.0f;
  const int32_t n = std::bit_cast<int32_t>(shifted) - 0x4B400000;
  const float nf = shifted - 12582912.0f;
  const float r = (x - nf * 0.693359375f) + nf * 2.12194440e-4f;
  // e^r by its Taylor polynomial to degree 7 (Horner): error < 1e-8 relative on |r| <= 0.35.
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * std::bit_cast<float>(uint32_t(n + 127) << 23);
}

// p[i] = fast_exp(p[i]) for i in [0, n), four at a time with SSE2. Written with intrinsics
// because GCC will not vectorise the clamp's comparisons without -fno-trapping-math, and
// libm's expf is a call per element: in attention that call costs as much as the GEMMs.
void exp_inplace(float* p, int64_t n);
// p[i] = fast_exp(p[i] − shift) in place; returns their sum (softmax's numerators and
// denominator in one pass).
float exp_shifted_sum(float* p, int64_t n, float shift);
// The largest of p[0, n) (n > 0), four lanes at a time for the same reason.
float max_of(const float* p, int64_t n);

}  // namespace ditrun::kernels::cpu::detail
