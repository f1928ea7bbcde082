// Argument checks and small-parameter decoding shared by the CPU kernels.
#include "kernels/cpu/cpu_common.h"

#include "runtime/core/error.h"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace ditrun::kernels::cpu::detail {

void check_host_f32(std::string_view op, std::string_view role, const Tensor& t) {
  if (t.numel() < 0) fail("{}: {} has an invalid shape {}", op, role, shape_string(t.shape()));
  if (t.dtype() != DType::F32 || t.device().kind != DeviceKind::Cpu)
    fail("{}: {} is {}, the CPU kernels take f32 tensors in host memory", op, role, t.describe());
  if (!t.defined()) fail("{}: {} {} has no data", op, role, shape_string(t.shape()));
}

bool same_layout(const Tensor& a, const Tensor& b) {
  return a.batch() == b.batch() && a.rows() == b.rows() && a.cols() == b.cols();
}

void check_same_layout(std::string_view op, std::string_view role_a, const Tensor& a, std::string_view role_b,
                       const Tensor& b) {
  if (!same_layout(a, b))
    fail("{}: {} {} and {} {} differ in shape", op, role_a, shape_string(a.shape()), role_b, shape_string(b.shape()));
}

void check_mod(std::string_view op, const Tensor& mod, int chunk, int64_t batch, int64_t cols) {
  check_host_f32(op, "mod", mod);
  if (mod.cols() != cols || (mod.batch() != batch && mod.batch() != 1))
    fail("{}: mod {} does not match {} batch items of {} columns", op, shape_string(mod.shape()), batch, cols);
  if (chunk < 0 || chunk >= mod.rows())
    fail("{}: chunk {} outside mod {} ({} chunks)", op, chunk, shape_string(mod.shape()), mod.rows());
}

std::vector<float> param_values(std::string_view op, std::string_view role, const Weight& w, int64_t count,
                                std::string_view expected, bool round) {
  if (w.numel() != count)
    fail("{}: {} '{}' {} has {} values, {} needs {}", op, role, w.name, shape_string(w.shape), w.numel(), expected,
         count);
  if (!w.unsupported.empty()) fail("{}: {} '{}': {}", op, role, w.name, w.unsupported);
  std::vector<float> values(size_t(count), 0.0f);
  w.dequantize(values);
  if (round) round_bf16(values.data(), count);
  return values;
}

#if defined(__SSE2__)
namespace {
// fast_exp on four lanes.
inline __m128 exp4(__m128 v) {
  const __m128 shift = _mm_set1_ps(12582912.0f);
  const __m128 x = _mm_min_ps(_mm_set1_ps(88.0f), _mm_max_ps(_mm_set1_ps(-87.0f), v));  // NaN stays NaN
  const __m128 shifted = _mm_add_ps(_mm_mul_ps(x, _mm_set1_ps(1.44269504f)), shift);
  const __m128 nf = _mm_sub_ps(shifted, shift);
  const __m128 r = _mm_add_ps(_mm_sub_ps(x, _mm_mul_ps(nf, _mm_set1_ps(0.693359375f))),
                              _mm_mul_ps(nf, _mm_set1_ps(2.12194440e-4f)));
  __m128 q = _mm_set1_ps(1.0f / 5040.0f);
  q = _mm_add_ps(_mm_mul_ps(q, r), _mm_set1_ps(1.0f / 720.0f));
  q = _mm_add_ps(_mm_mul_ps(q, r), _mm_set1_ps(1.0f / 120.0f));
  q = _mm_add_ps(_mm_mul_ps(q, r), _mm_set1_ps(1.0f / 24.0f));
  q = _mm_add_ps(_mm_mul_ps(q, r), _mm_set1_ps(1.0f / 6.0f));
  q = _mm_add_ps(_mm_mul_ps(q, r), _mm_set1_ps(0.5f));
  q = _mm_add_ps(_mm_mul_ps(q, r), _mm_set1_ps(1.0f));
  q = _mm_add_ps(_mm_mul_ps(q, r), _mm_set1_ps(1.0f));
  // 2^n: the biased exponent n + 127 in the exponent field.
  const __m128i e = _mm_slli_epi32(_mm_sub_epi32(_mm_castps_si128(shifted), _mm_set1_epi32(0x4B400000 - 127)), 23);
  return _mm_mul_ps(q, _mm_castsi128_ps(e));
}
}  // namespace
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// The same on eight lanes with AVX2 + FMA, compiled for that target alone and chosen at run
// time: the build targets baseline x86-64, but every machine we run on has AVX2, and twice
// the lanes make attention's softmax half as expensive next to its GEMMs.
#define DITRUN_HAVE_AVX2_PATH 1
namespace {
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 v) {
  const __m256 shift = _mm256_set1_ps(12582912.0f);
  const __m256 x = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(-87.0f), v));
  const __m256 shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504f), shift);
  const __m256 nf = _mm256_sub_ps(shifted, shift);
  const __m256 r = _mm256_fmadd_ps(nf, _mm256_set1_ps(2.12194440e-4f), _mm256_fnmadd_ps(nf, _mm256_set1_ps(0.693359375f), x));
  __m256 q = _mm256_set1_ps(1.0f / 5040.0f);
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 720.0f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 120.0f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 24.0f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f / 6.0f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(0.5f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f));
  q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000 - 127)), 23);
  return _mm256_mul_ps(q, _mm256_castsi256_ps(e));
}

__attribute__((target("avx2,fma"))) int64_t exp_inplace_avx2(float* p, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(p + i, exp8(_mm256_loadu_ps(p + i)));
  return i;
}

__attribute__((target("avx2,fma"))) int64_t exp_shifted_sum_avx2(float* p, int64_t n, float shift, float* sum) {
  const __m256 sub = _mm256_set1_ps(shift);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(p + i), sub));
    const __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(p + i + 8), sub));
    _mm256_storeu_ps(p + i, e0);
    _mm256_storeu_ps(p + i + 8, e1);
    acc0 = _mm256_add_ps(acc0, e0);
    acc1 = _mm256_add_ps(acc1, e1);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(acc0, acc1));
  *sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  return i;
}

bool have_avx2() {
  static const bool yes = [] {
    __builtin_cpu_init();  // may run before libgcc's own constructor has
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
}
}  // namespace
#endif

void exp_inplace(float* p, int64_t n) {
  int64_t i = 0;
#if defined(DITRUN_HAVE_AVX2_PATH)
  if (have_avx2()) i = exp_inplace_avx2(p, n);
#endif
#if defined(__SSE2__)
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(p + i, exp4(_mm_loadu_ps(p + i)));
#endif
  for (; i < n; ++i) p[i] = fast_exp(p[i]);
}

float exp_shifted_sum(float* p, int64_t n, float shift) {
  int64_t i = 0;
  float sum = 0.0f;
#if defined(DITRUN_HAVE_AVX2_PATH)
  if (have_avx2()) i = exp_shifted_sum_avx2(p, n, shift, &sum);
#endif
#if defined(__SSE2__)
  const __m128 sub = _mm_set1_ps(shift);
  __m128 acc = _mm_setzero_ps();
  for (; i + 4 <= n; i += 4) {
    const __m128 e = exp4(_mm_sub_ps(_mm_loadu_ps(p + i), sub));
    _mm_storeu_ps(p + i, e);
    acc = _mm_add_ps(acc, e);
  }
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, acc);
  sum += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
  for (; i < n; ++i) sum += (p[i] = fast_exp(p[i] - shift));
  return sum;
}

float max_of(const float* p, int64_t n) {
  float best = p[0];
  int64_t i = 0;
#if defined(__SSE2__)
  if (n >= 4) {
    __m128 m = _mm_loadu_ps(p);
    for (i = 4; i + 4 <= n; i += 4) m = _mm_max_ps(m, _mm_loadu_ps(p + i));
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, m);
    best = std::max(std::max(lanes[0], lanes[1]), std::max(lanes[2], lanes[3]));
  }
#endif
  for (; i < n; ++i) best = p[i] > best ? p[i] : best;
  return best;
}

}  // namespace ditrun::kernels::cpu::detail
