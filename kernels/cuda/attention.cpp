// flash_attention's host side: argument checks (the CPU twin's wording), the plan, and one
// launch per chunk of kFlashMaxKvLens batch items, each carrying its kv lengths by value.
#include "kernels/cuda/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/attention_kernels.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kernel_checks.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cuda {
namespace detail {

cuda_plan::AttentionShape attention_shape(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                          int64_t heads, std::span<const int64_t> kv_lens) {
  constexpr std::string_view op = "attention";
  check_device_activation(op, "q", q);
  check_device_activation(op, "k", k);
  check_device_activation(op, "v", v);
  check_device_activation(op, "out", out);
  check_same_dtype(op, q, k);
  check_same_dtype(op, q, v);
  check_same_dtype(op, q, out);
  check_same_layout(op, "q", q, "out", out);
  check_same_layout(op, "k", k, "v", v);
  const int64_t c = q.cols(), batch = q.batch(), lk = k.rows();
  if (k.cols() != c || k.batch() != batch)
    fail("attention: q {} and k {} differ in batch or width", shape_string(q.shape()), shape_string(k.shape()));
  if (heads <= 0 || c % heads != 0)
    fail("attention: q {} cannot be split into {} heads", shape_string(q.shape()), heads);
  if (!kv_lens.empty() && int64_t(kv_lens.size()) != batch)
    fail("attention: {} kv_lens for {} batch items (q {})", kv_lens.size(), batch, shape_string(q.shape()));
  for (int64_t len : kv_lens)
    if (len < 0 || len > lk) fail("attention: kv_len {} outside the {} keys of k {}", len, lk, shape_string(k.shape()));

  auto align = [](const Tensor& t) { return cuda_plan::address_alignment(reinterpret_cast<uintptr_t>(t.data())); };
  cuda_plan::AttentionShape s;
  s.dtype = q.dtype();
  s.batch = batch;
  s.heads = heads;
  s.lq = q.rows();
  s.lk = lk;
  s.head_dim = c / heads;
  s.q_row = q.row_stride();
  s.q_batch = q.batch_stride();
  s.k_row = k.row_stride();
  s.k_batch = k.batch_stride();
  s.v_row = v.row_stride();
  s.v_batch = v.batch_stride();
  s.o_row = out.row_stride();
  s.o_batch = out.batch_stride();
  s.q_align = align(q);
  s.k_align = align(k);
  s.v_align = align(v);
  s.o_align = align(out);
  return s;
}

}  // namespace detail

namespace {

void run_flash(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor* lse, int64_t heads,
               std::span<const int64_t> kv_lens, cudaStream_t stream, float scale = 0.0f,
               const Tensor* bias = nullptr) {
  const cuda_plan::AttentionShape s = detail::attention_shape(q, k, v, out, heads, kv_lens);
  if (bias) {
    if (s.dtype != DType::F32 || bias->dtype() != DType::F32 || bias->device().kind != DeviceKind::Cuda)
      fail("attention with a bias: q {} and bias {} must be f32 device tensors (the f32 kernel adds it)", q.describe(),
           bias->describe());
    if ((bias->batch() != s.batch && bias->batch() != 1) || bias->rows() != heads * s.lq || bias->cols() != s.lk)
      fail("attention: bias {} should be [{} or 1, {}x{}, {}]", bias->describe(), s.batch, heads, s.lq, s.lk);
  }
  if (lse) {
    if (s.dtype != DType::F32) fail("attention with log-sum-exp: q {} is not f32 (the f32 kernel writes it)", q.describe());
    if (lse->dtype() != DType::F32 || !lse->contiguous() || lse->shape() != Shape{s.batch, s.lq, heads})
      fail("attention: lse {} should be a contiguous f32 [{}, {}, {}]", lse->describe(), s.batch, s.lq, heads);
  }
  if (s.batch == 0 || s.lq == 0 || s.head_dim == 0) return;
  const cuda_plan::FlashPlan plan = cuda_plan::plan_flash_attention(s);
  const int64_t elem = s.dtype == DType::F32 ? 4 : 2;

  detail::FlashArgs a{};
  a.q_row = s.q_row;
  a.q_batch = s.q_batch;
  a.k_row = s.k_row;
  a.k_batch = s.k_batch;
  a.v_row = s.v_row;
  a.v_batch = s.v_batch;
  a.o_row = s.o_row;
  a.o_batch = s.o_batch;
  a.lq = int32_t(s.lq);
  a.lk = int32_t(s.lk);
  a.head_dim = int32_t(s.head_dim);
  a.scale = scale != 0.0f ? scale : float(1.0 / std::sqrt(double(s.head_dim)));  // as the CPU twin
  a.scale_log2 = scale != 0.0f ? float(1.4426950408889634 * double(scale))
                                : float(1.4426950408889634 / std::sqrt(double(s.head_dim)));
  a.bias_batch = bias && bias->batch() != 1 ? bias->batch_stride() : 0;
  a.bias_row = bias ? bias->row_stride() : 0;

  for (int64_t b0 = 0; b0 < s.batch; b0 += plan.batch_per_launch) {
    const int64_t items = std::min(plan.batch_per_launch, s.batch - b0);
    auto at = [elem, b0](const Tensor& t, int64_t batch_stride) {
      return static_cast<char*>(t.data()) + b0 * batch_stride * elem;
    };
    a.q = at(q, s.q_batch);
    a.k = at(k, s.k_batch);
    a.v = at(v, s.v_batch);
    a.out = at(out, s.o_batch);
    a.lse = lse ? static_cast<float*>(lse->data()) + b0 * s.lq * heads : nullptr;
    a.bias = bias ? static_cast<const float*>(bias->data()) + b0 * a.bias_batch : nullptr;
    a.heads = int32_t(heads);
    a.kv.count = kv_lens.empty() ? 0 : int32_t(items);
    for (int64_t i = 0; i < a.kv.count; ++i) a.kv.len[i] = int32_t(kv_lens[size_t(b0 + i)]);
    const cudaError_t err = s.dtype == DType::BF16 ? detail::launch_flash_bf16(plan, a, items, stream)
                                                    : detail::launch_flash_f32(plan, a, items, stream);
    check_cuda(err, s.dtype == DType::BF16 ? "attention (flash bf16 kernel)" : "attention (f32 kernel)");
  }
}

}  // namespace

void flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
                     std::span<const int64_t> kv_lens, cudaStream_t stream) {
  run_flash(q, k, v, out, nullptr, heads, kv_lens, stream);
}

void flash_attention_biased(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads, float scale,
                            const Tensor& bias, std::span<const int64_t> kv_lens, cudaStream_t stream) {
  run_flash(q, k, v, out, nullptr, heads, kv_lens, stream, scale, &bias);
}

void flash_attention_lse(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, int64_t heads,
                         std::span<const int64_t> kv_lens, cudaStream_t stream) {
  run_flash(q, k, v, out, &lse, heads, kv_lens, stream);
}

}  // namespace ditrun::kernels::cuda
