// attention: softmax(q kᵀ / sqrt(D)) v with a streaming (online) softmax, so memory is a
// few tiles per thread whatever the token counts.
//
// Work item = (batch item, head, tile of kQueryTile query rows). For each tile of kKeyTile
// keys: S = scale · Q Kᵀ (one sgemm on the head's column slice, lda = the row stride), then
// per query row the running max m and sum l are updated, the accumulator O is rescaled by
// e^(m_old − m_new), P = e^(S − m_new) overwrites S, and O += P · V (a second sgemm). At the
// end O / l is the output, and m + ln l the row's log-sum-exp of the scaled scores (for ring
// attention, which merges partial results over blocks of keys). The items are spread over the worker pool with sgemm
// single-threaded inside (see use_single_threaded_blas): on 2 cores, 2 independent tiles
// keep both busy without any synchronisation inside the loop.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_common.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {
namespace {

constexpr int64_t kQueryTile = 128;
constexpr int64_t kKeyTile = 256;

}  // namespace

void attention(const CpuContext& ctx, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
               int64_t heads, std::span<const int64_t> kv_lens, Tensor* lse) {
  attention_biased(ctx, q, k, v, out, heads, 0.0f, nullptr, kv_lens, lse);
}

void attention_biased(const CpuContext& ctx, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                      int64_t heads, float scale_or_zero, const Tensor* bias, std::span<const int64_t> kv_lens,
                      Tensor* lse) {
  constexpr std::string_view op = "attention";
  detail::check_host_f32(op, "q", q);
  detail::check_host_f32(op, "k", k);
  detail::check_host_f32(op, "v", v);
  detail::check_host_f32(op, "out", out);
  detail::check_same_layout(op, "q", q, "out", out);
  detail::check_same_layout(op, "k", k, "v", v);
  const int64_t c = q.cols(), batch = q.batch(), lq = q.rows(), lk = k.rows();
  if (k.cols() != c || k.batch() != batch)
    fail("attention: q {} and k {} differ in batch or width", shape_string(q.shape()), shape_string(k.shape()));
  if (heads <= 0 || c % heads != 0)
    fail("attention: q {} cannot be split into {} heads", shape_string(q.shape()), heads);
  if (!kv_lens.empty() && int64_t(kv_lens.size()) != batch)
    fail("attention: {} kv_lens for {} batch items (q {})", kv_lens.size(), batch, shape_string(q.shape()));
  for (int64_t len : kv_lens)
    if (len < 0 || len > lk) fail("attention: kv_len {} outside the {} keys of k {}", len, lk, shape_string(k.shape()));
  if (lse) {
    detail::check_host_f32(op, "lse", *lse);
    if (lse->shape() != Shape{batch, lq, heads} || !lse->contiguous())
      fail("attention: lse {} should be a contiguous [{}, {}, {}]", shape_string(lse->shape()), batch, lq, heads);
  }
  if (bias) {
    detail::check_host_f32(op, "bias", *bias);
    if ((bias->batch() != batch && bias->batch() != 1) || bias->rows() != heads * lq || bias->cols() != lk)
      fail("attention: bias {} should be [{} or 1, {}x{}, {}] for q {} and k {}", bias->describe(), batch, heads, lq,
           lk, shape_string(q.shape()), shape_string(k.shape()));
  }
  const int64_t d = c / heads;
  if (batch == 0 || lq == 0 || d == 0) return;
  use_single_threaded_blas();

  const float scale = scale_or_zero != 0.0f ? scale_or_zero : float(1.0 / std::sqrt(double(d)));
  const int64_t q_tiles = (lq + kQueryTile - 1) / kQueryTile;
  detail::run_tasks(std::max(ctx.threads, 1), batch * heads * q_tiles, [&](int64_t item) {
    const int64_t b = item / (heads * q_tiles), h = item / q_tiles % heads, r0 = item % q_tiles * kQueryTile;
    const int64_t rows = std::min(kQueryTile, lq - r0);
    const int64_t keys = kv_lens.empty() ? lk : kv_lens[size_t(b)];
    float* o_out = out.row<float>(b, r0) + h * d;
    float* lse_out = lse ? lse->row<float>(b, r0) + h : nullptr;  // stride `heads` between rows
    if (keys == 0) {
      for (int64_t i = 0; i < rows; ++i) std::fill_n(o_out + i * out.row_stride(), d, 0.0f);
      if (lse_out)
        for (int64_t i = 0; i < rows; ++i) lse_out[i * heads] = -std::numeric_limits<float>::infinity();
      return;
    }
    thread_local std::vector<float> s, acc;
    s.resize(size_t(kQueryTile * kKeyTile));
    acc.assign(size_t(rows * d), 0.0f);
    float m[kQueryTile], l[kQueryTile];
    std::fill_n(m, rows, -std::numeric_limits<float>::infinity());
    std::fill_n(l, rows, 0.0f);

    const float* q_tile = q.row<const float>(b, r0) + h * d;
    for (int64_t j0 = 0; j0 < keys; j0 += kKeyTile) {
      const int64_t n = std::min(kKeyTile, keys - j0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(n), int(d), scale, q_tile,
                  int(q.row_stride()), k.row<const float>(b, j0) + h * d, int(k.row_stride()), 0.0f, s.data(),
                  int(kKeyTile));
      for (int64_t i = 0; i < rows; ++i) {
        float* si = s.data() + i * kKeyTile;
        if (bias) {
          const float* bi = bias->row<const float>(bias->batch() == 1 ? 0 : b, h * lq + r0 + i) + j0;
          for (int64_t j = 0; j < n; ++j) si[j] += bi[j];
        }
        const float m_new = std::max(m[i], detail::max_of(si, n));
        const float correction = std::exp(m[i] - m_new);  // 0 on the first tile (m = −inf)
        l[i] = l[i] * correction + detail::exp_shifted_sum(si, n, m_new);
        m[i] = m_new;
        if (correction != 1.0f) {
          float* ai = acc.data() + i * d;
          for (int64_t j = 0; j < d; ++j) ai[j] *= correction;
        }
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(d), int(n), 1.0f, s.data(),
                  int(kKeyTile), v.row<const float>(b, j0) + h * d, int(v.row_stride()), 1.0f, acc.data(), int(d));
    }
    for (int64_t i = 0; i < rows; ++i) {
      float* dst = o_out + i * out.row_stride();
      const float* ai = acc.data() + i * d;
      const float inv = 1.0f / l[i];
      for (int64_t j = 0; j < d; ++j) dst[j] = ai[j] * inv;
      if (ctx.round_bf16) detail::round_bf16(dst, d);
      if (lse_out) lse_out[i * heads] = m[i] + std::log(l[i]);
    }
  });
}

}  // namespace ditrun::kernels::cpu
