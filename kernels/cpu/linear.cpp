// linear: y = x · Wᵀ (+ bias) with W in any storage type.
//
// The weight is decoded in chunks of its rows (= output columns) into a per-thread scratch
// buffer and multiplied right away with one single-threaded cblas_sgemm per chunk, so the
// decoded rows are still in cache and the decode runs in parallel with nothing held but a
// chunk (never the whole f32 weight). The threads split the output columns between them;
// measured on the 2-core build machine, two single-threaded sgemms over halves of N reach
// ~98% of one two-threaded OpenBLAS call. Only when N is too narrow to split (and M is
// large) do the threads split the rows instead, each then decoding the whole (small) weight.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <span>

#include "kernels/cpu/cpu_common.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {

void use_single_threaded_blas() {
  // Checked on every call rather than once: code outside the kernels (a benchmark measuring
  // OpenBLAS's own peak) may set more threads in between. The lock keeps two callers from
  // resizing OpenBLAS's pool at the same time.
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

namespace {

using detail::round_bf16;

// Rows of an activation view seen as one flat index m in [0, batch·rows).
struct RowView {
  float* base;
  int64_t rows, row_stride, batch_stride;
  float* row(int64_t m) const { return base + (m / rows) * batch_stride + (m % rows) * row_stride; }
  // One leading dimension covers every row when batch items follow each other at the stride.
  bool uniform(int64_t batch) const { return batch == 1 || batch_stride == rows * row_stride; }
};

// Calls fn(m0, count) for runs of rows in [begin, end) that one sgemm can cover.
template <class Fn>
void for_each_run(int64_t begin, int64_t end, int64_t rows, bool uniform, Fn&& fn) {
  if (uniform) {
    if (end > begin) fn(begin, end - begin);
    return;
  }
  for (int64_t m = begin; m < end;) {
    const int64_t stop = std::min(end, (m / rows + 1) * rows);
    fn(m, stop - m);
    m = stop;
  }
}

// Up to this many rows (modulation vectors, one per batch item), one sgemv per row beats
// OpenBLAS's sgemm, which handles a few rows 2-4x slower than the weight streams in.
constexpr int64_t kGemvRows = 4;

// Decoded rows per chunk. With few activation rows the GEMM is bound by the decode and a
// chunk should stay in L2 (256 KiB); with many, OpenBLAS repacks x once per chunk and large
// chunks amortise that. 32 KiB per activation row, between the two, was best on the 2-core
// build machine (Zen, bf16 and q4_K weights, M = 1 to 4096); at most 16 MiB per thread.
int64_t chunk_rows(int64_t m, int64_t k) {
  const int64_t target_bytes = std::clamp<int64_t>(m * (32 << 10), 256 << 10, 16 << 20);
  const int64_t rows = target_bytes / (std::max<int64_t>(k, 1) * int64_t(sizeof(float)));
  return std::max<int64_t>(16, rows / 16 * 16);
}

}  // namespace

void linear(const CpuContext& ctx, const Tensor& x, const Weight& w, const Weight* bias, Tensor& y) {
  constexpr std::string_view op = "linear";
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "y", y);
  const int64_t n = w.rows(), k = w.cols();
  if (x.cols() != k || y.cols() != n || x.batch() != y.batch() || x.rows() != y.rows())
    fail("linear '{}' {}: x {} and y {} do not fit it (need [.., {}] -> [.., {}])", w.name, shape_string(w.shape),
         shape_string(x.shape()), shape_string(y.shape()), k, n);
  if (!w.unsupported.empty()) fail("linear '{}': {}", w.name, w.unsupported);
  const std::vector<float> bias_values =
      bias ? detail::param_values(op, "bias", *bias, n, fmt::format("weight '{}'", w.name), ctx.round_bf16)
           : std::vector<float>();
  const int64_t batch = x.batch(), rows = x.rows(), m = batch * rows;
  if (m == 0 || n == 0) return;
  use_single_threaded_blas();

  // The left operand: x in place, or (BF16 mode) a rounded contiguous copy, which lives in
  // the calling thread's scratch while the workers read it.
  RowView xv{x.data_as<float>(), rows, x.row_stride(), x.batch_stride()};
  if (ctx.round_bf16 && k > 0) {
    thread_local std::vector<float> x_rounded;
    x_rounded.resize(size_t(m * k));
    float* const rounded = x_rounded.data();  // the workers have thread_locals of their own
    detail::parallel_chunks(ctx, m, std::max<int64_t>(1, 16384 / k), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float* src = xv.row(i);
        float* dst = rounded + i * k;
        for (int64_t j = 0; j < k; ++j) dst[j] = round_bf16(src[j]);
      }
    });
    xv = RowView{rounded, rows, k, rows * k};
  }
  const RowView yv{y.data_as<float>(), rows, y.row_stride(), y.batch_stride()};
  const bool uniform = xv.uniform(batch) && yv.uniform(batch);

  // F32 weights without scales are multiplied where they lie (when aligned for floats).
  const bool in_place = w.storage == DType::F32 && w.scale_layout == ScaleLayout::None && !ctx.round_bf16 &&
                        w.bytes.size() == size_t(n * k) * sizeof(float) &&
                        reinterpret_cast<uintptr_t>(w.bytes.data()) % alignof(float) == 0;
  const float* w_in_place = in_place ? reinterpret_cast<const float*>(w.bytes.data()) : nullptr;
  // BF16 mode rounds the decoded weight, except where decoding cannot leave bf16 values.
  const bool round_w = ctx.round_bf16 && !(w.storage == DType::BF16 && w.scale_layout == ScaleLayout::None);

  // One tile of the output: rows [m0, m1) by columns [n0, n1).
  auto tile = [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    thread_local std::vector<float> decoded;
    // In place, chunks only matter to the per-row sgemvs, which then reread W from cache.
    const int64_t step = in_place && m1 - m0 > kGemvRows ? n1 - n0 : chunk_rows(m1 - m0, k);
    for (int64_t c0 = n0; c0 < n1; c0 += step) {
      const int64_t c1 = std::min(n1, c0 + step), nc = c1 - c0;
      const float* wp = w_in_place ? w_in_place + c0 * k : nullptr;
      if (!wp) {
        decoded.resize(size_t(nc * k));
        w.dequantize_rows(c0, c1, std::span<float>(decoded.data(), size_t(nc * k)));
        if (round_w) round_bf16(decoded.data(), nc * k);
        wp = decoded.data();
      }
      for_each_run(m0, m1, rows, uniform, [&](int64_t r, int64_t count) {
        if (k == 0) {
          for (int64_t i = 0; i < count; ++i) std::fill_n(yv.row(r + i) + c0, nc, 0.0f);
          return;
        }
        if (count <= kGemvRows) {
          for (int64_t i = r; i < r + count; ++i)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, int(nc), int(k), 1.0f, wp, int(k), xv.row(i), 1, 0.0f,
                        yv.row(i) + c0, 1);
        } else {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(count), int(nc), int(k), 1.0f, xv.row(r),
                      int(xv.row_stride), wp, int(k), 0.0f, yv.row(r) + c0, int(yv.row_stride));
        }
      });
      if (bias || ctx.round_bf16) {
        for (int64_t i = m0; i < m1; ++i) {
          float* out = yv.row(i) + c0;
          if (bias)
            for (int64_t j = 0; j < nc; ++j) out[j] += bias_values[size_t(c0 + j)];
          if (ctx.round_bf16) round_bf16(out, nc);
        }
      }
    }
  };

  // Split the output between threads: by columns when there are enough of them, else by
  // rows; tiny products run on the caller alone.
  const int threads = 2.0 * double(m) * double(n) * double(k) < 2e6 ? 1 : std::max(ctx.threads, 1);
  if (n >= 64 * threads || m < 64 * threads) {
    const int64_t parts = std::min<int64_t>(threads, (n + 15) / 16);
    detail::run_tasks(int(parts), parts, [&](int64_t p) {
      tile(0, m, n * p / parts / 16 * 16, p + 1 == parts ? n : n * (p + 1) / parts / 16 * 16);
    });
  } else {
    detail::run_tasks(threads, threads, [&](int64_t p) { tile(m * p / threads, m * (p + 1) / threads, 0, n); });
  }
}

}  // namespace ditrun::kernels::cpu
