// fp8 activation quantization on the device against a CPU reference written here from the
// definition (fp8_quantize.h): scale = amax / 448 per tensor, per token, or per 128 columns
// of a token (N-major), codes = e4m3(x / scale) rounded to nearest even, saturating. The
// device's conversion and ditrun's f32_to_f8e4m3 both round to nearest even, so codes and
// scales must agree exactly.
#include <gtest/gtest.h>

#include <cmath>

#include "gpu_test_support.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fp8_quantize.h"
#include "runtime/core/float_codecs.h"

namespace ditrun::test {
namespace {

using kernels::cuda_plan::ScaleMode;

struct Expected {
  std::vector<uint8_t> codes;
  std::vector<float> scales;
};

Expected reference(const std::vector<float>& x, int64_t tokens, int64_t cols, ScaleMode mode) {
  Expected e;
  e.codes.resize(x.size());
  auto quantize_group = [&](int64_t t, int64_t c0, int64_t c1, float* scale_out) {
    float amax = 0;
    for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[size_t(t * cols + c)]));
    const float scale = amax > 0 ? amax / 448.0f : 1.0f, inv = 1.0f / scale;
    *scale_out = scale;
    for (int64_t c = c0; c < c1; ++c) e.codes[size_t(t * cols + c)] = f32_to_f8e4m3(x[size_t(t * cols + c)] * inv);
  };
  if (mode == ScaleMode::Scalar32F) {
    float amax = 0;
    for (float v : x) amax = std::max(amax, std::fabs(v));
    const float scale = amax > 0 ? amax / 448.0f : 1.0f, inv = 1.0f / scale;
    e.scales = {scale};
    for (size_t i = 0; i < x.size(); ++i) e.codes[i] = f32_to_f8e4m3(x[i] * inv);
  } else if (mode == ScaleMode::OuterVec32F) {
    e.scales.resize(size_t(tokens));
    for (int64_t t = 0; t < tokens; ++t) quantize_group(t, 0, cols, &e.scales[size_t(t)]);
  } else {
    const int64_t blocks = (cols + 127) / 128;
    e.scales.resize(size_t(tokens * blocks));
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t b = 0; b < blocks; ++b)
        quantize_group(t, b * 128, std::min(cols, b * 128 + 128), &e.scales[size_t(t + b * tokens)]);
  }
  return e;
}

class Fp8Quantize : public testing::TestWithParam<std::tuple<ScaleMode, DType>> {
 protected:
  void SetUp() override { DITRUN_REQUIRE_GPU(); }
};

TEST_P(Fp8Quantize, CodesAndScalesMatchTheDefinition) {
  const auto [mode, dtype] = GetParam();
  constexpr int64_t batch = 2, rows = 37, cols = 384;
  std::vector<float> values = random_values(size_t(batch * rows * cols), 5, 3.0f);
  values[17] = 1000.0f;  // an outlier sets the per-tensor scale
  if (dtype == DType::BF16)
    for (float& v : values) v = bf16_to_f32(f32_to_bf16(v));  // what the device tensor holds
  const Tensor x = device_tensor({batch, rows, cols}, dtype, values);
  const int64_t tokens = batch * rows;
  const Expected want = reference(values, tokens, cols, mode);
  void *codes = nullptr, *scales = nullptr, *scratch = nullptr;
  kernels::cuda::check_cuda(cudaMalloc(&codes, values.size()), "malloc");
  kernels::cuda::check_cuda(cudaMalloc(&scales, want.scales.size() * 4), "malloc");
  kernels::cuda::check_cuda(cudaMalloc(&scratch, kernels::cuda::kFp8ScratchBytes), "malloc");
  kernels::cuda::quantize_fp8(x, static_cast<uint8_t*>(codes), static_cast<float*>(scales), mode, std::nullopt, scratch,
                              nullptr);
  std::vector<uint8_t> got_codes(values.size());
  std::vector<float> got_scales(want.scales.size());
  kernels::cuda::check_cuda(cudaMemcpy(got_codes.data(), codes, got_codes.size(), cudaMemcpyDeviceToHost), "download");
  kernels::cuda::check_cuda(cudaMemcpy(got_scales.data(), scales, got_scales.size() * 4, cudaMemcpyDeviceToHost), "download");
  cudaFree(codes);
  cudaFree(scales);
  cudaFree(scratch);
  EXPECT_EQ(got_scales, want.scales);
  size_t mismatches = 0;
  for (size_t i = 0; i < got_codes.size(); ++i) mismatches += got_codes[i] != want.codes[i];
  EXPECT_EQ(mismatches, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, Fp8Quantize,
                         testing::Combine(testing::Values(ScaleMode::Scalar32F, ScaleMode::OuterVec32F, ScaleMode::Vec128_32F),
                                          testing::Values(DType::F32, DType::BF16)),
                         [](const auto& info) {
                           const ScaleMode m = std::get<0>(info.param);
                           return std::string(m == ScaleMode::Scalar32F ? "tensor" : m == ScaleMode::OuterVec32F ? "token" : "block128") +
                                  (std::get<1>(info.param) == DType::F32 ? "_f32" : "_bf16");
                         });

}  // namespace
}  // namespace ditrun::test
