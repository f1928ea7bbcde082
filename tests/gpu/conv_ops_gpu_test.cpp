// The VAEs' ops of the CUDA backend against the CPU backend (their twins), through the
// Backend interface, in f32 and bf16 modes; then the three VAE reference cases on CUDA
// against the official outputs (f32 1e-4, bf16 6e-2 as on the CPU).
#include <gtest/gtest.h>

#include <cmath>

#include "gpu_test_support.h"
#include "reference_case.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/float_codecs.h"
#include "runtime/cuda/cuda_backend.h"

namespace ditrun::test {
namespace {

using runtime::Backend;
using runtime::DeviceWeight;
using runtime::Precision;

std::unique_ptr<Backend> cuda(Precision p) {
  runtime::CudaBackendOptions o;
  o.precision = p;
  o.arena_bytes = 1ull << 30;
  return runtime::make_cuda_backend(o);
}

struct HostWeight {
  std::vector<uint8_t> bytes;
  Weight w;
  HostWeight(const std::string& name, const Shape& shape, DType storage, uint32_t seed) {
    const auto v = random_values(size_t(shape_numel(shape)), seed, 0.3f);
    bytes.resize(size_t(dtype_bytes(storage, shape_numel(shape), name)));
    quantize_from_f32(storage, v, bytes);
    w.name = name;
    w.shape = shape;
    w.storage = storage;
    w.bytes = bytes;
    w.encoding = dtype_info(storage).kind == DTypeKind::Quantized ? Encoding::Gguf : Encoding::Plain;
  }
};

// Runs `op` on the CPU and on CUDA with the same uploaded input and returns both results.
template <class Op>
std::pair<std::vector<float>, std::vector<float>> on_both(Precision p, const Shape& in_shape, const Shape& out_shape,
                                                          uint32_t seed, Op&& op) {
  std::vector<std::vector<float>> results;
  const auto x = random_values(size_t(shape_numel(in_shape)), seed);
  auto cpu = runtime::make_cpu_backend({p, 0});
  auto gpu = cuda(p);
  for (Backend* be : {cpu.get(), gpu.get()}) {
    Tensor in = be->empty(in_shape);
    be->upload(x, in, be->compute_stream());
    Tensor out = be->zeros(out_shape);
    op(*be, in, out);
    std::vector<float> host(size_t(out.numel()));
    be->download(out, host, be->compute_stream());
    results.push_back(std::move(host));
  }
  return {results[0], results[1]};
}

double worst_relative(const std::vector<float>& want, const std::vector<float>& got) {
  double worst = want.size() == got.size() ? 0 : INFINITY;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i)
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / std::max(1.0, std::fabs(double(want[i]))));
  return worst;
}

double tolerance(Precision p) { return p == Precision::F32 ? 2e-5 : 1.6e-2; }

class CudaConvOps : public testing::TestWithParam<Precision> {
 protected:
  void SetUp() override { DITRUN_REQUIRE_GPU(); }
};

TEST_P(CudaConvOps, Conv3dCausalAndStrided) {
  ConvSpec time_down;
  time_down.kernel = {3, 1, 1};
  time_down.stride = {2, 1, 1};
  for (const auto& [in, spec, storage] : {std::tuple{Volume{4, 9, 7}, ConvSpec::causal(3, 3), DType::BF16},
                                          std::tuple{Volume{1, 16, 12}, ConvSpec::downsample2x(), DType::F32},
                                          std::tuple{Volume{5, 4, 4}, time_down, DType::Q8_0}}) {
    const int64_t c_in = 32, c_out = 24;
    HostWeight w("w", {c_out, c_in, spec.kernel[0], spec.kernel[1], spec.kernel[2]}, storage, 1);
    HostWeight bias("b", {c_out}, DType::F32, 2);
    const Volume out = spec.output(in, "test");
    const auto [want, got] = on_both(GetParam(), {2, in.positions(), c_in}, {2, out.positions(), c_out}, 3,
                                     [&](Backend& be, const Tensor& x, Tensor& y) {
                                       const DeviceWeight dw = be.load_weight(w.w, be.compute_stream());
                                       const DeviceWeight db = be.load_weight(bias.w, be.compute_stream());
                                       be.conv3d(x, in, dw, &db, spec, y);
                                     });
    EXPECT_LT(worst_relative(want, got), GetParam() == Precision::F32 ? 1e-4 : 3e-2) << spec.str();
  }
}

TEST_P(CudaConvOps, GroupNorm) {
  HostWeight gamma("g", {64}, DType::BF16, 4), beta("b", {64}, DType::F32, 5);
  const auto [want, got] = on_both(GetParam(), {2, 300, 64}, {2, 300, 64}, 6, [&](Backend& be, const Tensor& x, Tensor& y) {
    be.group_norm(x, y, 32, 1e-6f, be.load_weight(gamma.w, be.compute_stream()), be.load_weight(beta.w, be.compute_stream()));
  });
  EXPECT_LT(worst_relative(want, got), tolerance(GetParam()));
}

TEST_P(CudaConvOps, ResamplingIsExact) {
  const Volume in{3, 4, 6};
  for (int op = 0; op < 3; ++op) {
    const int64_t c_in = 8;
    const Volume out = op == 0 ? Volume{3, 8, 12} : op == 1 ? avg_down_volume(in, 2, 2) : dup_up_volume(in, 2, 2, 1);
    const int64_t c_out = op == 0 ? 8 : op == 1 ? 16 : 4;
    const auto [want, got] = on_both(GetParam(), {1, in.positions(), c_in}, {1, out.positions(), c_out}, 7,
                                     [&](Backend& be, const Tensor& x, Tensor& y) {
                                       if (op == 0) be.upsample2x(x, in, y);
                                       else if (op == 1) be.avg_down3d(x, in, 2, 2, y);
                                       else be.dup_up3d(x, in, 2, 2, 1, y);
                                     });
    EXPECT_LE(worst_relative(want, got), op == 1 ? tolerance(GetParam()) : 0.0) << "op " << op;
  }
}

// The VAEs' mid-block attention: one head of 512 (Flux AE) or 384 (Wan) channels, beyond the
// bf16 kernel's 256: the f32 kernel's 512 bucket (bf16 mode converts around it).
TEST_P(CudaConvOps, SingleHeadAttentionOfTheVaeMidBlocks) {
  for (const int64_t d : {int64_t(384), int64_t(512)}) {
    const int64_t tokens = 300;
    const auto [want, got] = on_both(GetParam(), {2, tokens, 3 * d}, {2, tokens, d}, 11, [&](Backend& be, const Tensor& qkv, Tensor& y) {
      be.attention(qkv.slice_cols(0, d), qkv.slice_cols(d, d), qkv.slice_cols(2 * d, d), y, 1, {});
    });
    EXPECT_LT(worst_relative(want, got), tolerance(GetParam())) << "head dim " << d;
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, CudaConvOps, testing::Values(Precision::F32, Precision::BF16),
                         [](const auto& info) { return std::string(info.param == Precision::F32 ? "f32" : "bf16"); });

class CudaVaeReference : public testing::TestWithParam<std::tuple<std::string, Precision>> {
 protected:
  void SetUp() override { DITRUN_REQUIRE_GPU(); }
};

TEST_P(CudaVaeReference, DecodeAndEncodeWithinTheCpuTolerance) {
  const auto& [name, precision] = GetParam();
  auto backend = cuda(precision);
  const VaeCaseRun run = run_vae_case(name, *backend);
  const double tol = precision == Precision::F32 ? 1e-4 : 6e-2;
  for (const char* out : {"decode.out", "encode.mean", "encode.out"}) {
    const double err = max_abs_diff(run.outputs.at(out), run.io.at(out));
    std::printf("[ measured ] %s %s %s: max |diff| %.3g\n", name.c_str(), precision == Precision::F32 ? "f32" : "bf16",
                out, err);
    EXPECT_LT(err, tol) << out;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaVaeReference,
                         testing::Combine(testing::Values("flux-ae-tiny", "wan21-vae-tiny", "wan22-vae-tiny"),
                                          testing::Values(Precision::F32, Precision::BF16)),
                         [](const auto& info) {
                           return test_label(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) == Precision::F32 ? "_f32" : "_bf16");
                         });

}  // namespace
}  // namespace ditrun::test
