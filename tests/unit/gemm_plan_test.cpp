// The CUDA backend's GEMM decisions, checked on the host: which path each weight takes, the
// conversion of checkpoint scale layouts into cuBLASLt's, the algorithm-cache keys, and the
// fp8 shape rules. The scale conversion is checked by computing one product two ways on the
// CPU: through Weight::dequantize (what the CPU backend multiplies by), and through the
// converted scales read the way cuBLASLt reads them (cuda_plan::emulate_scaled_gemm).
#include "kernels/cuda_plan/gemm_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <unordered_set>

#include "models/quant/fp8_quantize.h"
#include "runtime/core/error.h"
#include "runtime/core/float_codecs.h"

namespace ditrun::kernels::cuda_plan {
namespace {

constexpr DeviceCaps kHopper{9, 0}, kAda{8, 9}, kAmpere{8, 0}, kBlackwell{10, 0};

struct Fp8Weight {
  quant::Fp8Quantized q;
  Weight w;
};

// A weight quantized by ditrun's own fp8 quantizers, in the layout `block` asks for
// (0: per tensor; cols: per row; else per block of that many columns).
Fp8Weight fp8_weight(int64_t rows, int64_t cols, int64_t block, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> values(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) values[size_t(r * cols + c)] = normal(rng) * float(1 + r % 7) * float(1 + c / 128);
  Fp8Weight out;
  out.q = block == 0 ? quant::quantize_fp8_per_tensor(values, rows, cols)
                     : quant::quantize_fp8_blockwise(values, rows, cols, block);
  Weight& w = out.w;
  w.name = "blocks.0.linear.weight";
  w.shape = {rows, cols};
  w.storage = DType::F8_E4M3;
  w.bytes = out.q.bytes;
  w.encoding = block == 0 ? Encoding::ScaledFp8 : Encoding::BlockFp8;
  w.scale_layout = out.q.layout;
  w.scales = out.q.scales;
  w.scale_block = out.q.layout == ScaleLayout::PerBlock ? out.q.block : 0;
  return out;
}

Weight plain_weight(DType storage, int64_t rows = 64, int64_t cols = 256) {
  Weight w;
  w.name = "w";
  w.shape = {rows, cols};
  w.storage = storage;
  return w;
}

TEST(GemmPath, FollowsStorageScalesAndDevice) {
  EXPECT_EQ(choose_gemm_path(plain_weight(DType::BF16), false, kHopper).path, GemmPath::Bf16);
  EXPECT_EQ(choose_gemm_path(plain_weight(DType::BF16), true, kHopper).path, GemmPath::F32);
  EXPECT_EQ(choose_gemm_path(plain_weight(DType::Q4_K), false, kHopper).path, GemmPath::DequantBf16);
  EXPECT_EQ(choose_gemm_path(plain_weight(DType::F16), false, kHopper).path, GemmPath::DequantBf16);
  EXPECT_EQ(choose_gemm_path(plain_weight(DType::F8_E4M3), false, kHopper).path, GemmPath::Fp8Tensor);
  EXPECT_EQ(choose_gemm_path(plain_weight(DType::F8_E4M3), false, kAda).path, GemmPath::Fp8Tensor);
  EXPECT_EQ(choose_gemm_path(plain_weight(DType::F8_E4M3), false, kAmpere).path, GemmPath::DequantBf16);
  EXPECT_EQ(choose_gemm_path(plain_weight(DType::F8_E4M3), false, kHopper, false).path, GemmPath::DequantBf16);
  EXPECT_EQ(choose_gemm_path(plain_weight(DType::F8_E5M2), false, kHopper).path, GemmPath::DequantBf16);

  EXPECT_EQ(choose_gemm_path(fp8_weight(64, 256, 0).w, false, kHopper).path, GemmPath::Fp8Tensor);
  // A block that does not divide the row falls back to one scale per row (musubi's [out, 1]).
  EXPECT_EQ(choose_gemm_path(fp8_weight(64, 384, 256).w, false, kHopper).path, GemmPath::Fp8Row);
  EXPECT_EQ(choose_gemm_path(fp8_weight(64, 384, 256).w, false, kAda).path, GemmPath::DequantBf16);
  EXPECT_EQ(choose_gemm_path(fp8_weight(64, 256, 128).w, false, kHopper).path, GemmPath::Fp8Block128);
  EXPECT_EQ(choose_gemm_path(fp8_weight(64, 256, 128).w, false, kBlackwell).path, GemmPath::DequantBf16);
  const GemmChoice musubi = choose_gemm_path(fp8_weight(64, 256, 64).w, false, kHopper);
  EXPECT_EQ(musubi.path, GemmPath::DequantBf16);
  EXPECT_NE(musubi.why.find("64"), std::string::npos) << musubi.why;
  // Tensor cores need dims in multiples of 16.
  EXPECT_EQ(choose_gemm_path(fp8_weight(24, 256, 0).w, false, kHopper).path, GemmPath::DequantBf16);
}

// x · Wᵀ through the converted scales, against x · dequantize(W)ᵀ.
void expect_converted_scales_reproduce(const Fp8Weight& fw, ScaleMode want_mode) {
  const Weight& w = fw.w;
  const int64_t m = w.rows(), k = w.cols(), n = 12;
  const ScaleLayoutA a = scales_for_cublaslt(w);
  ASSERT_EQ(a.mode, want_mode);
  std::vector<float> qa(size_t(m * k));
  for (size_t i = 0; i < qa.size(); ++i) qa[i] = f8e4m3_to_f32(w.bytes[i]);

  // Activations already on the fp8 grid, with per-(token, block) scales in B's layout.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> code(0, 0x7E);
  std::uniform_real_distribution<float> scale(0.5f, 2.0f);
  const ScaleMode mode_b = want_mode == ScaleMode::Scalar32F ? ScaleMode::Scalar32F : want_mode;
  const int64_t b_scales = mode_b == ScaleMode::Scalar32F ? 1 : mode_b == ScaleMode::OuterVec32F ? n : n * (k / 128);
  std::vector<float> qb(static_cast<size_t>(n * k)), sb(static_cast<size_t>(b_scales));
  for (float& v : qb) v = f8e4m3_to_f32(uint8_t(code(rng) | (code(rng) & 1 ? 0x80 : 0)));
  for (float& v : sb) v = scale(rng);
  std::vector<float> x(size_t(n * k));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t kk = 0; kk < k; ++kk)
      x[size_t(t * k + kk)] = qb[size_t(t * k + kk)] * sb[size_t(scale_index(mode_b, t, kk, n))];

  const std::vector<float> got = emulate_scaled_gemm(qa, a.values, a.mode, qb, sb, mode_b, m, n, k);
  const std::vector<float> wd = w.dequantize();
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < m; ++o) {
      double want = 0, mag = 0;
      for (int64_t kk = 0; kk < k; ++kk) {
        want += double(x[size_t(t * k + kk)]) * wd[size_t(o * k + kk)];
        mag += std::fabs(double(x[size_t(t * k + kk)]) * wd[size_t(o * k + kk)]);
      }
      ASSERT_NEAR(got[size_t(t * m + o)], want, 1e-5 * mag + 1e-12) << "token " << t << " output " << o;
    }
}

TEST(ScaleLayout, PerTensorIsOneScalar) { expect_converted_scales_reproduce(fp8_weight(32, 256, 0), ScaleMode::Scalar32F); }

TEST(ScaleLayout, MusubiPerRowBecomesOuterVector) {
  // musubi writes [out, 1] when a row does not split into blocks; quantize_fp8_blockwise does
  // the same when the block does not divide the row.
  Fp8Weight fw = fp8_weight(48, 384, 256);
  ASSERT_EQ(fw.w.scale_layout, ScaleLayout::PerRow);
  expect_converted_scales_reproduce(fw, ScaleMode::OuterVec32F);
}

TEST(ScaleLayout, Block128BecomesMMajorVec128) {
  Fp8Weight fw = fp8_weight(48, 512, 128);
  ASSERT_EQ(fw.w.scale_layout, ScaleLayout::PerBlock);
  const ScaleLayoutA a = scales_for_cublaslt(fw.w);
  // The file's [out, in/128] row-major becomes m x L column-major: (row 1, block 0) is element 1.
  EXPECT_EQ(a.values[1], fw.w.scales[4]);
  EXPECT_EQ(a.values[48], fw.w.scales[1]);
  expect_converted_scales_reproduce(fw, ScaleMode::Vec128_32F);
}

TEST(ScaleLayout, Musubi64BlocksHaveNoCublasltLayout) {
  Fp8Weight fw = fp8_weight(16, 256, 64);
  try {
    scales_for_cublaslt(fw.w);
    FAIL() << "64-column blocks were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.0.linear.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("64"), std::string::npos) << e.what();
  }
}

GemmKey flux_key() {
  return GemmKey{GemmPath::Bf16, DType::BF16, DType::BF16, DType::BF16, 3072, 4608, 3072, 3072, 9216, 3072,
                 Epilogue::Bias, ScaleMode::Scalar32F, ScaleMode::Scalar32F, 256};
}

TEST(GemmKey, EqualKeysHashEqualAndEveryFieldCounts) {
  const GemmKey a = flux_key();
  EXPECT_EQ(a, flux_key());
  EXPECT_EQ(GemmKeyHash{}(a), GemmKeyHash{}(flux_key()));
  std::vector<GemmKey> variants(14, a);
  variants[0].path = GemmPath::F32;
  variants[1].a = DType::F8_E4M3;
  variants[2].b = DType::F32;
  variants[3].d = DType::F32;
  variants[4].m = 3073;
  variants[5].n = 4609;
  variants[6].k = 3088;
  variants[7].lda = 3088;
  variants[8].ldb = 3072;
  variants[9].ldd = 6144;
  variants[10].epilogue = Epilogue::BiasGelu;
  variants[11].scale_a = ScaleMode::Vec128_32F;
  variants[12].scale_b = ScaleMode::OuterVec32F;
  variants[13].alignment = 16;
  std::unordered_set<size_t> hashes{GemmKeyHash{}(a)};
  for (const GemmKey& v : variants) {
    EXPECT_FALSE(v == a) << v.describe();
    hashes.insert(GemmKeyHash{}(v));
  }
  EXPECT_EQ(hashes.size(), variants.size() + 1) << "a field does not reach the hash";
  EXPECT_NE(a.describe().find("m=3072 n=4608 k=3072"), std::string::npos) << a.describe();
}

TEST(GemmKey, AlignmentIsTheLargestCommonPowerOfTwo) {
  EXPECT_EQ(common_alignment({0x10000, 0x20000}), 256u);
  EXPECT_EQ(common_alignment({0x10000, 0x20010}), 16u);
  EXPECT_EQ(common_alignment({0x10000, 0x0}), 256u);  // a null bias pointer does not count against it
  EXPECT_EQ(common_alignment({0x10006}), 2u);
}

TEST(Fp8Shape, TensorCoreRules) {
  GemmKey k = flux_key();
  k.path = GemmPath::Fp8Tensor;
  k.a = k.b = DType::F8_E4M3;
  k.ldb = 3072;
  EXPECT_EQ(fp8_shape_problem(k), "");
  GemmKey odd_k = k;
  odd_k.k = odd_k.lda = odd_k.ldb = 3080;
  EXPECT_NE(fp8_shape_problem(odd_k).find("k = 3080"), std::string::npos);
  GemmKey unaligned = k;
  unaligned.alignment = 8;
  EXPECT_NE(fp8_shape_problem(unaligned), "");
  GemmKey blocks = k;
  blocks.scale_a = blocks.scale_b = ScaleMode::Vec128_32F;
  blocks.n = 4610;
  EXPECT_NE(fp8_shape_problem(blocks).find("multiple of 4"), std::string::npos);
  blocks.n = 4612;
  EXPECT_EQ(fp8_shape_problem(blocks), "");
  GemmKey gemv = k;  // one token: fine with per-tensor scales
  gemv.n = 1;
  EXPECT_EQ(fp8_shape_problem(gemv), "");
}

}  // namespace
}  // namespace ditrun::kernels::cuda_plan
