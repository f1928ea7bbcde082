#include "kernels/cuda_plan/gemm_plan.h"

#include <fmt/format.h>

#include <bit>

#include "runtime/core/error.h"

namespace ditrun::kernels::cuda_plan {

std::string_view gemm_path_name(GemmPath path) {
  switch (path) {
    case GemmPath::F32: return "f32";
    case GemmPath::Bf16: return "bf16";
    case GemmPath::DequantBf16: return "dequant-bf16";
    case GemmPath::Fp8Tensor: return "fp8-tensor";
    case GemmPath::Fp8Row: return "fp8-row";
    case GemmPath::Fp8Block128: return "fp8-block128";
  }
  return "?";
}

GemmChoice choose_gemm_path(const Weight& w, bool f32_activations, const DeviceCaps& caps, bool fp8_gemm) {
  if (f32_activations) return {GemmPath::F32, "f32 activations"};
  if (w.storage == DType::BF16 && w.scale_layout == ScaleLayout::None) return {GemmPath::Bf16, "stored bf16"};
  if (w.storage != DType::F8_E4M3) return {GemmPath::DequantBf16, fmt::format("{} has no cuBLASLt type", dtype_name(w.storage))};
  if (!fp8_gemm) return {GemmPath::DequantBf16, "fp8 GEMMs are switched off"};
  if (!caps.fp8()) return {GemmPath::DequantBf16, fmt::format("sm_{}{} has no fp8 tensor cores", caps.cc_major, caps.cc_minor)};
  if (w.cols() % 16 != 0 || w.rows() % 16 != 0)
    return {GemmPath::DequantBf16, fmt::format("shape [{}, {}] is not a multiple of 16", w.rows(), w.cols())};
  switch (w.scale_layout) {
    case ScaleLayout::None:
    case ScaleLayout::PerTensor: return {GemmPath::Fp8Tensor, "per-tensor scale"};
    case ScaleLayout::PerRow:
      if (!caps.fp8_block_scaling()) return {GemmPath::DequantBf16, "per-row fp8 scales need sm_90"};
      return {GemmPath::Fp8Row, "per-row scales"};
    case ScaleLayout::PerBlock:
      if (w.scale_block != 128)
        return {GemmPath::DequantBf16, fmt::format("{}-column scale blocks have no cuBLASLt mode (only 128)", w.scale_block)};
      if (!caps.fp8_block_scaling()) return {GemmPath::DequantBf16, "128-column fp8 scale blocks need sm_90"};
      return {GemmPath::Fp8Block128, "128-column scale blocks"};
  }
  return {GemmPath::DequantBf16, "unknown scale layout"};
}

ScaleLayoutA scales_for_cublaslt(const Weight& w) {
  ScaleLayoutA out;
  const int64_t m = w.rows(), k = w.cols();
  switch (w.scale_layout) {
    case ScaleLayout::None:
      out.mode = ScaleMode::Scalar32F;
      out.values = {1.0f};
      return out;
    case ScaleLayout::PerTensor:
      out.mode = ScaleMode::Scalar32F;
      out.values = {w.scales.at(0)};
      return out;
    case ScaleLayout::PerRow:
      if (int64_t(w.scales.size()) != m) fail("tensor '{}': {} row scales for {} rows", w.name, w.scales.size(), m);
      out.mode = ScaleMode::OuterVec32F;
      out.values = w.scales;
      return out;
    case ScaleLayout::PerBlock: {
      if (w.scale_block != 128 || k % 128 != 0)
        fail("tensor '{}': scale blocks of {} columns (of {}) have no cuBLASLt layout; only 128-column blocks do",
             w.name, w.scale_block, k);
      const int64_t blocks = k / 128;
      if (int64_t(w.scales.size()) != m * blocks)
        fail("tensor '{}': {} block scales, [{}, {}] needs {}", w.name, w.scales.size(), m, k, m * blocks);
      out.mode = ScaleMode::Vec128_32F;
      out.values.resize(w.scales.size());
      // The file's [m, k/128] row-major becomes cuBLASLt's M-major m x L.
      for (int64_t i = 0; i < m; ++i)
        for (int64_t b = 0; b < blocks; ++b) out.values[size_t(scale_index(out.mode, i, b * 128, m))] = w.scales[size_t(i * blocks + b)];
      return out;
    }
  }
  fail("tensor '{}': unknown scale layout", w.name);
}

int64_t scale_index(ScaleMode mode, int64_t i, int64_t kk, int64_t rows) {
  switch (mode) {
    case ScaleMode::Scalar32F: return 0;
    case ScaleMode::OuterVec32F: return i;
    case ScaleMode::Vec128_32F: return i + (kk / 128) * rows;
    case ScaleMode::Blk128x128_32F: break;  // not produced by ditrun's weights
  }
  fail("scale_index: mode {} is not modelled", int(mode));
}

std::vector<float> emulate_scaled_gemm(const std::vector<float>& qa, const std::vector<float>& sa, ScaleMode mode_a,
                                       const std::vector<float>& qb, const std::vector<float>& sb, ScaleMode mode_b,
                                       int64_t m, int64_t n, int64_t k) {
  std::vector<float> y(size_t(n * m));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < m; ++o) {
      double acc = 0;
      for (int64_t kk = 0; kk < k; ++kk)
        acc += double(sa[size_t(scale_index(mode_a, o, kk, m))]) * qa[size_t(o * k + kk)] *
               double(sb[size_t(scale_index(mode_b, t, kk, n))]) * qb[size_t(t * k + kk)];
      y[size_t(t * m + o)] = float(acc);
    }
  return y;
}

std::string GemmKey::describe() const {
  static constexpr std::string_view kEpilogues[] = {"", " bias", " gelu", " bias+gelu"};
  return fmt::format("{} {}x{}->{} m={} n={} k={} ld={}/{}/{}{} scales={}/{} align={}", gemm_path_name(path),
                     dtype_name(a), dtype_name(b), dtype_name(d), m, n, k, lda, ldb, ldd,
                     kEpilogues[size_t(epilogue)], int(scale_a), int(scale_b), alignment);
}

size_t GemmKeyHash::operator()(const GemmKey& key) const {
  // FNV-1a over the fields: stable across runs, so logs and caches agree.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 1099511628211ull;
    }
  };
  mix(uint64_t(key.path));
  mix(uint64_t(key.a) | uint64_t(key.b) << 8 | uint64_t(key.d) << 16 | uint64_t(key.epilogue) << 24);
  mix(uint64_t(key.m));
  mix(uint64_t(key.n));
  mix(uint64_t(key.k));
  mix(uint64_t(key.lda));
  mix(uint64_t(key.ldb));
  mix(uint64_t(key.ldd));
  mix(uint64_t(uint32_t(key.scale_a)) | uint64_t(uint32_t(key.scale_b)) << 32);
  mix(key.alignment);
  return size_t(h);
}

uint32_t common_alignment(std::initializer_list<uintptr_t> addresses) {
  uintptr_t bits = 256;
  for (uintptr_t a : addresses) bits |= a;
  return uint32_t(uintptr_t(1) << std::countr_zero(bits));
}

std::string fp8_shape_problem(const GemmKey& key) {
  if (key.k % 16 != 0) return fmt::format("k = {} is not a multiple of 16", key.k);
  if (key.m % 16 != 0) return fmt::format("m = {} is not a multiple of 16", key.m);
  if (key.lda % 16 != 0 || key.ldb % 16 != 0) return fmt::format("leading dims {}/{} are not multiples of 16", key.lda, key.ldb);
  if (key.ldd % 8 != 0) return fmt::format("output leading dim {} is not a multiple of 8", key.ldd);
  if (key.alignment < 16) return fmt::format("operands are only {}-byte aligned", key.alignment);
  const bool blocks = key.scale_a == ScaleMode::Vec128_32F || key.scale_b == ScaleMode::Vec128_32F;
  if (blocks && key.n % 4 != 0) return fmt::format("n = {} is not a multiple of 4 (block scaling)", key.n);
  return {};
}

}  // namespace ditrun::kernels::cuda_plan
