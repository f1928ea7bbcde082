// Every op of the CUDA backend against the CPU backend (its twin), through the Backend
// interface both implement: the same inputs uploaded to each, the op run on each, the results
// compared. f32 mode must agree to float rounding; bf16 mode to the rounding of bf16 outputs
// (both round an f32 result to nearest even, so most elements agree exactly and the rest by
// one bf16 step). One TEST per op and precision, so the report shows which ran.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gpu_test_support.h"
#include "models/quant/fp8_quantize.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/core/float_codecs.h"
#include "runtime/cuda/cuda_backend.h"

namespace ditrun::test {
namespace {

using runtime::Backend;
using runtime::DeviceWeight;
using runtime::Precision;

struct Twins {
  std::unique_ptr<Backend> cpu, gpu;
  Precision precision;
};

Twins twins(Precision p) {
  runtime::CudaBackendOptions o;
  o.precision = p;
  o.arena_bytes = 1ull << 30;
  return Twins{runtime::make_cpu_backend({p, 0}), runtime::make_cuda_backend(o), p};
}

Tensor put(Backend& be, const Shape& shape, const std::vector<float>& values) {
  Tensor t = be.empty(shape);
  be.upload(values, t, be.compute_stream());
  return t;
}

std::vector<float> get(Backend& be, const Tensor& t) {
  std::vector<float> out(size_t(t.numel()));
  be.download(t, out, be.compute_stream());
  return out;
}

// Largest |a - b| relative to max(1, |b|): bf16 outputs differ by at most one bf16 step
// (2^-8 relative) where the two f32 results straddle a rounding boundary.
double worst_relative(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::fabs(double(a[i]) - b[i]) / std::max(1.0, std::fabs(double(b[i])));
    worst = std::max(worst, std::isnan(e) ? INFINITY : e);
  }
  return a.size() == b.size() ? worst : INFINITY;
}

double tolerance(Precision p) { return p == Precision::F32 ? 2e-5 : 1.6e-2; }

// A weight of `values` stored as `storage` (host bytes kept alongside).
struct HostWeight {
  std::vector<uint8_t> bytes;
  Weight w;
};
HostWeight encode(const std::string& name, const Shape& shape, DType storage, const std::vector<float>& values) {
  HostWeight h;
  h.bytes.resize(size_t(dtype_bytes(storage, shape_numel(shape), name)));
  quantize_from_f32(storage, values, h.bytes);
  h.w.name = name;
  h.w.shape = shape;
  h.w.storage = storage;
  h.w.bytes = h.bytes;
  h.w.encoding = dtype_info(storage).kind == DTypeKind::Quantized ? Encoding::Gguf : Encoding::Plain;
  return h;
}

class BackendOps : public testing::TestWithParam<Precision> {
 protected:
  void SetUp() override { DITRUN_REQUIRE_GPU(); }
};

std::string precision_label(const testing::TestParamInfo<Precision>& info) {
  return info.param == Precision::F32 ? "f32" : "bf16";
}

TEST_P(BackendOps, LayerNormAffineOnAColumnView) {
  Twins t = twins(GetParam());
  const Shape wide{2, 33, 3 * 96};
  const auto x = random_values(size_t(shape_numel(wide)), 1, 2.0f);
  HostWeight gamma = encode("gamma", {96}, DType::BF16, random_values(96, 2));
  HostWeight beta = encode("beta", {96}, DType::F32, random_values(96, 3));
  std::vector<std::vector<float>> results;
  for (Backend* be : {t.cpu.get(), t.gpu.get()}) {
    const Tensor in = put(*be, wide, x);
    Tensor out = be->zeros({2, 33, 96});
    const DeviceWeight g = be->load_weight(gamma.w, be->compute_stream()), b = be->load_weight(beta.w, be->compute_stream());
    be->layer_norm(in.slice_cols(96, 96), out, 1e-6f, &g, &b);
    results.push_back(get(*be, out));
  }
  EXPECT_LT(worst_relative(results[1], results[0]), tolerance(t.precision));
}

TEST_P(BackendOps, LayerNormModulate) {
  Twins t = twins(GetParam());
  const auto x = random_values(2 * 40 * 128, 4, 3.0f), mod = random_values(2 * 6 * 128, 5, 0.5f);
  for (int64_t mod_batch : {1, 2}) {
    std::vector<std::vector<float>> results;
    for (Backend* be : {t.cpu.get(), t.gpu.get()}) {
      const Tensor in = put(*be, {2, 40, 128}, x);
      const Tensor m = put(*be, {mod_batch, 6, 128}, std::vector<float>(mod.begin(), mod.begin() + mod_batch * 6 * 128));
      Tensor out = be->empty({2, 40, 128});
      be->layer_norm_modulate(in, m, 3, 4, 1e-6f, out);
      results.push_back(get(*be, out));
    }
    EXPECT_LT(worst_relative(results[1], results[0]), tolerance(t.precision)) << "mod batch " << mod_batch;
  }
}

TEST_P(BackendOps, RmsNormPerHeadInPlaceAndWholeWidth) {
  Twins t = twins(GetParam());
  const auto x = random_values(3 * 17 * 256, 6, 1.5f);
  HostWeight head_scale = encode("scale", {64}, DType::BF16, random_values(64, 7));
  HostWeight row_scale = encode("scale", {2048}, DType::F32, random_values(2048, 8));
  const auto wide = random_values(2 * 5 * 2048, 9);
  std::vector<std::vector<float>> heads, rows;
  for (Backend* be : {t.cpu.get(), t.gpu.get()}) {
    Tensor qkv = put(*be, {3, 17, 256}, x);
    Tensor q = qkv.slice_cols(64, 128);
    be->rms_norm(q, q, be->load_weight(head_scale.w, be->compute_stream()), 64, 1e-6f);
    heads.push_back(get(*be, qkv));
    const Tensor in = put(*be, {2, 5, 2048}, wide);
    Tensor out = be->empty({2, 5, 2048});
    be->rms_norm(in, out, be->load_weight(row_scale.w, be->compute_stream()), 2048, 1e-6f);
    rows.push_back(get(*be, out));
  }
  EXPECT_LT(worst_relative(heads[1], heads[0]), tolerance(t.precision));
  EXPECT_LT(worst_relative(rows[1], rows[0]), tolerance(t.precision));
}

TEST_P(BackendOps, RopeWithBroadcastTable) {
  Twins t = twins(GetParam());
  const auto x = random_values(2 * 50 * 4 * 32, 10);
  std::vector<float> table(50 * 32);
  for (int64_t l = 0; l < 50; ++l)
    for (int64_t p = 0; p < 16; ++p) {
      const double angle = double(l) * std::pow(10000.0, -double(p) / 16.0);
      table[size_t(l * 32 + 2 * p)] = float(std::cos(angle));
      table[size_t(l * 32 + 2 * p + 1)] = float(std::sin(angle));
    }
  std::vector<std::vector<float>> results;
  for (Backend* be : {t.cpu.get(), t.gpu.get()}) {
    Tensor in = put(*be, {2, 50, 128}, x);
    be->rope(in, put(*be, {1, 50, 32}, table), 4);
    results.push_back(get(*be, in));
  }
  EXPECT_LT(worst_relative(results[1], results[0]), tolerance(t.precision));
}

TEST_P(BackendOps, ActivationsAddAndGatedAdd) {
  Twins t = twins(GetParam());
  const auto a = random_values(2 * 9 * 300, 11, 4.0f), b = random_values(9 * 300, 12), g = random_values(2 * 3 * 300, 13);
  std::vector<std::vector<float>> results;
  for (Backend* be : {t.cpu.get(), t.gpu.get()}) {
    Tensor x = put(*be, {2, 9, 300}, a);
    Tensor y = be->empty({2, 9, 300});
    be->gelu_tanh(x, y);
    std::vector<float> all = get(*be, y);
    be->gelu(x, y);
    const auto exact = get(*be, y);
    all.insert(all.end(), exact.begin(), exact.end());
    be->silu(x, y);
    const auto silu = get(*be, y);
    all.insert(all.end(), silu.begin(), silu.end());
    be->add(x, put(*be, {1, 9, 300}, b), y);  // broadcast over the batch
    const auto sum = get(*be, y);
    all.insert(all.end(), sum.begin(), sum.end());
    be->gated_add(x, y, put(*be, {2, 3, 300}, g), 2);
    const auto gated = get(*be, x);
    all.insert(all.end(), gated.begin(), gated.end());
    results.push_back(std::move(all));
  }
  EXPECT_LT(worst_relative(results[1], results[0]), tolerance(t.precision));
}

TEST_P(BackendOps, CopyBetweenViewsIsExact) {
  Twins t = twins(GetParam());
  const auto a = random_values(2 * 20 * 64, 14);
  std::vector<std::vector<float>> results;
  for (Backend* be : {t.cpu.get(), t.gpu.get()}) {
    const Tensor src = put(*be, {2, 20, 64}, a);
    Tensor dst = be->zeros({2, 30, 96});
    Tensor view = dst.slice_rows(5, 20).slice_cols(16, 64);
    be->copy(src, view);
    results.push_back(get(*be, dst));
  }
  EXPECT_EQ(results[1], results[0]);
}

// linear for every storage path the CUDA backend has, against the CPU's GEMM on the same
// stored weight. fp8 GEMMs quantize activations to e4m3 (3 mantissa bits), so they are held
// to 8% of the output's largest magnitude; the others to their precision's tolerance.
struct LinearCase {
  const char* label;
  DType storage;
  int64_t fp8_block;  // -1: not fp8 scaled; 0 per tensor; a block not dividing the row: per row; else block
};

class BackendLinear : public testing::TestWithParam<std::tuple<Precision, LinearCase>> {
 protected:
  void SetUp() override { DITRUN_REQUIRE_GPU(); }
};

TEST_P(BackendLinear, MatchesTheCpuGemm) {
  const auto [precision, c] = GetParam();
  Twins t = twins(precision);
  constexpr int64_t n = 256, k = 512, tokens = 77;
  const auto wv = random_values(size_t(n * k), 20, 0.05f);
  HostWeight hw;
  quant::Fp8Quantized q;
  if (c.fp8_block >= 0) {
    q = c.fp8_block == 0 ? quant::quantize_fp8_per_tensor(wv, n, k) : quant::quantize_fp8_blockwise(wv, n, k, c.fp8_block);
    hw.w.name = "linear.weight";
    hw.w.shape = {n, k};
    hw.w.storage = DType::F8_E4M3;
    hw.w.bytes = q.bytes;
    hw.w.encoding = c.fp8_block == 0 ? Encoding::ScaledFp8 : Encoding::BlockFp8;
    hw.w.scale_layout = q.layout;
    hw.w.scales = q.scales;
    hw.w.scale_block = q.layout == ScaleLayout::PerBlock ? q.block : 0;
  } else {
    hw = encode("linear.weight", {n, k}, c.storage, wv);
  }
  HostWeight bias = encode("linear.bias", {n}, DType::F32, random_values(n, 21));
  // x is a row view (every other row of a taller buffer): strided rows through the GEMM.
  const auto xv = random_values(size_t(2 * tokens * 2 * k), 22);
  std::vector<std::vector<float>> plain, gelu;
  for (Backend* be : {t.cpu.get(), t.gpu.get()}) {
    const Tensor wide = put(*be, {2, tokens, 2 * k}, xv);
    const Tensor x = wide.slice_cols(k, k);
    const DeviceWeight w = be->load_weight(hw.w, be->compute_stream());
    const DeviceWeight b = be->load_weight(bias.w, be->compute_stream());
    Tensor y = be->empty({2, tokens, n});
    be->linear(x, w, &b, y);
    plain.push_back(get(*be, y));
    be->linear_gelu(x, w, &b, y);
    gelu.push_back(get(*be, y));
  }
  double scale = 0;
  for (float v : plain[0]) scale = std::max(scale, double(std::fabs(v)));
  const double tol = c.fp8_block >= 0 && precision == Precision::BF16 ? 0.08 * scale
                     : precision == Precision::BF16                 ? 0.02 * scale
                                                                    : 1e-4 * scale;
  EXPECT_LT(max_abs_diff(plain[1], plain[0]).value, tol) << c.label;
  EXPECT_LT(max_abs_diff(gelu[1], gelu[0]).value, tol) << c.label << " (GELU epilogue)";
}

const LinearCase kLinearCases[] = {
    {"f32", DType::F32, -1},          {"bf16", DType::BF16, -1},        {"f16", DType::F16, -1},
    {"q8_0", DType::Q8_0, -1},        {"q4_K", DType::Q4_K, -1},        {"q6_K", DType::Q6_K, -1},
    {"iq4_nl", DType::IQ4_NL, -1},    {"fp8", DType::F8_E4M3, -1},      {"fp8_scaled", DType::F8_E4M3, 0},
    {"fp8_per_row", DType::F8_E4M3, 1000}, {"fp8_block128", DType::F8_E4M3, 128}, {"fp8_block64", DType::F8_E4M3, 64},
};

INSTANTIATE_TEST_SUITE_P(AllPaths, BackendLinear,
                         testing::Combine(testing::Values(Precision::F32, Precision::BF16), testing::ValuesIn(kLinearCases)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == Precision::F32 ? "f32_" : "bf16_") +
                                  std::get<1>(info.param).label;
                         });

TEST_P(BackendOps, LinearIsDeterministic) {
  Twins t = twins(GetParam());
  HostWeight w = encode("w", {384, 256}, DType::Q4_K, random_values(384 * 256, 30, 0.05f));
  const auto xv = random_values(3 * 100 * 256, 31);
  const DeviceWeight dw = t.gpu->load_weight(w.w, t.gpu->compute_stream());
  const Tensor x = put(*t.gpu, {3, 100, 256}, xv);
  Tensor y = t.gpu->empty({3, 100, 384});
  t.gpu->linear(x, dw, nullptr, y);
  const auto first = get(*t.gpu, y);
  t.gpu->linear(x, dw, nullptr, y);
  EXPECT_EQ(get(*t.gpu, y), first);
}

TEST_P(BackendOps, AttentionThroughTheBackend) {
  Twins t = twins(GetParam());
  const int64_t heads = 4, d = 64, lq = 200, lk = 150;
  const auto q = random_values(2 * lq * heads * d, 40), k = random_values(2 * lk * heads * d, 41),
             v = random_values(2 * lk * heads * d, 42);
  const int64_t lens[] = {150, 97};
  std::vector<std::vector<float>> results;
  for (Backend* be : {t.cpu.get(), t.gpu.get()}) {
    Tensor out = be->empty({2, lq, heads * d});
    be->attention(put(*be, {2, lq, heads * d}, q), put(*be, {2, lk, heads * d}, k), put(*be, {2, lk, heads * d}, v),
                  out, heads, lens);
    results.push_back(get(*be, out));
  }
  EXPECT_LT(max_abs_diff(results[1], results[0]).value, t.precision == Precision::F32 ? 1e-4 : 2e-2);
}

TEST_P(BackendOps, DeviceMemoryComesFromOneArena) {
  Twins t = twins(GetParam());
  const runtime::MemoryStats before = t.gpu->memory_stats();
  {
    Tensor a = t.gpu->empty({1, 1000, 1000});
    const runtime::MemoryStats during = t.gpu->memory_stats();
    EXPECT_EQ(during.limit_bytes, 1ull << 30);
    EXPECT_GE(during.in_use_bytes, before.in_use_bytes + 1000 * 1000 * (t.precision == Precision::F32 ? 4 : 2));
  }
  EXPECT_EQ(t.gpu->memory_stats().in_use_bytes, before.in_use_bytes);
  EXPECT_THROW(t.gpu->empty({1, 1 << 20, 1 << 10}), Error);  // 2-4 GiB: more than the arena
}

// The text encoders' ops: the gated GELU's product, CLIP's quick_gelu, and attention with a per-head additive bias and scale 1
// (the f32 kernel adds the bias; bf16 mode converts around it), masked keys, broadcast bias.
TEST_P(BackendOps, MulAndBiasedAttention) {
  Twins t = twins(GetParam());
  const int64_t heads = 4, d = 64, lq = 140, lk = 140;
  const auto a = random_values(2 * 30 * 96, 21), b = random_values(2 * 30 * 96, 22);
  const auto qkv = random_values(size_t(2 * lq * 3 * heads * d), 23), bias = random_values(size_t(heads * lq * lk), 24, 3.0f);
  const std::vector<int64_t> lens{lk, 37};
  std::vector<std::vector<float>> products, attended;
  for (Backend* be : {t.cpu.get(), t.gpu.get()}) {
    Tensor y = be->empty({2, 30, 96});
    be->mul(put(*be, {2, 30, 96}, a), put(*be, {2, 30, 96}, b), y);
    products.push_back(get(*be, y));
    be->quick_gelu(y, y);  // CLIP's activation, in place
    products.push_back(get(*be, y));
    const Tensor x = put(*be, {2, lq, 3 * heads * d}, qkv);
    Tensor out = be->zeros({2, lq, heads * d});
    be->attention_biased(x.slice_cols(0, heads * d), x.slice_cols(heads * d, heads * d),
                         x.slice_cols(2 * heads * d, heads * d), out, heads, 1.0f, put(*be, {1, heads * lq, lk}, bias),
                         lens);
    attended.push_back(get(*be, out));
  }
  EXPECT_LT(worst_relative(products[2], products[0]), tolerance(t.precision));
  EXPECT_LT(worst_relative(products[3], products[1]), tolerance(t.precision));
  EXPECT_LT(worst_relative(attended[1], attended[0]), t.precision == Precision::F32 ? 2e-5 : 3e-2);
}

INSTANTIATE_TEST_SUITE_P(Precisions, BackendOps, testing::Values(Precision::F32, Precision::BF16), precision_label);

}  // namespace
}  // namespace ditrun::test
