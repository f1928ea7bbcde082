// The device decoders against the CPU codecs on ggml's own vectors: every storage type in
// ggml-vectors.gguf, decoded on the GPU through the shared __host__ __device__ decoders, must
// equal the CPU decode bit for bit in f32 (both compile without FMA contraction), and be its
// round-to-nearest-even in bf16. Also the scale layouts: fp8 per tensor, per row, per block.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "gpu_test_support.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dequantize.h"
#include "models/formats/gguf.h"
#include "models/formats/mapped_file.h"
#include "models/quant/fp8_quantize.h"
#include "runtime/core/float_codecs.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

using kernels::cuda::check_cuda;

struct DeviceCopy {
  std::shared_ptr<void> memory;
  template <class T>
  T* as() const { return static_cast<T*>(memory.get()); }
};
DeviceCopy to_device(const void* host, size_t bytes) {
  void* p = nullptr;
  check_cuda(cudaMalloc(&p, std::max<size_t>(bytes, 256)), "cudaMalloc");
  DeviceCopy d{std::shared_ptr<void>(p, [](void* q) { cudaFree(q); })};
  if (bytes) check_cuda(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice), "upload");
  return d;
}

// Decodes `w` on the device into f32 and bf16, checks both against the CPU.
void expect_device_decode_matches(const Weight& w) {
  const std::vector<float> want = w.dequantize();
  const DeviceCopy bytes = to_device(w.bytes.data(), w.bytes.size());
  const DeviceCopy scales = to_device(w.scales.data(), w.scales.size() * sizeof(float));
  kernels::cuda::WeightRef ref;
  ref.source = &w;
  ref.bytes = bytes.as<uint8_t>();
  ref.scales = w.scales.empty() ? nullptr : scales.as<float>();
  const size_t n = want.size();
  const DeviceCopy f32 = to_device(nullptr, n * 4), bf16 = to_device(nullptr, n * 2);
  kernels::cuda::dequantize(ref, f32.as<void>(), DType::F32, nullptr);
  kernels::cuda::dequantize(ref, bf16.as<void>(), DType::BF16, nullptr);
  std::vector<float> got(n);
  std::vector<uint16_t> got16(n);
  check_cuda(cudaMemcpy(got.data(), f32.as<void>(), n * 4, cudaMemcpyDeviceToHost), "download");
  check_cuda(cudaMemcpy(got16.data(), bf16.as<void>(), n * 2, cudaMemcpyDeviceToHost), "download");
  size_t f32_mismatch = 0, bf16_mismatch = 0, first = n;
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(&got[i], &want[i], 4) != 0 && !(std::isnan(got[i]) && std::isnan(want[i]))) {
      ++f32_mismatch;
      first = std::min(first, i);
    }
    if (got16[i] != f32_to_bf16(want[i]) && !std::isnan(want[i])) ++bf16_mismatch;
  }
  EXPECT_EQ(f32_mismatch, 0u) << w.name << ": first at " << first << ": got " << got[first] << ", CPU " << want[first];
  EXPECT_EQ(bf16_mismatch, 0u) << w.name;
}

class DeviceDecode : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { DITRUN_REQUIRE_GPU(); }
};

TEST_P(DeviceDecode, BitExactWithTheCpuOnGgmlVectors) {
  const std::string path = testdata("gguf/ggml-vectors.gguf");
  formats::MappedFile file(path);
  const formats::GgufIndex index = formats::parse_gguf(file.bytes(), path);
  for (const auto& t : index.tensors) {
    if (t.name != GetParam() + ".weight") continue;
    Weight w;
    w.name = t.name;
    w.shape = {6, 512};
    w.storage = t.dtype;
    w.bytes = file.bytes().subspan(t.offset, t.nbytes);
    w.encoding = Encoding::Gguf;
    expect_device_decode_matches(w);
    return;
  }
  FAIL() << GetParam() << " is not in " << path;
}

INSTANTIATE_TEST_SUITE_P(GgmlTypes, DeviceDecode,
                         testing::Values("f32", "f16", "bf16", "q8_0", "q6_K", "q5_K", "q5_1", "q5_0", "q4_K", "q4_1",
                                         "q4_0", "q3_K", "q2_K", "iq4_nl", "iq4_xs", "iq3_s", "iq3_xxs", "iq2_s",
                                         "iq2_xs", "iq2_xxs", "iq1_s", "iq1_m", "tq1_0", "tq2_0", "mxfp4"));

class DeviceDecodeScales : public testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { DITRUN_REQUIRE_GPU(); }
};

TEST_P(DeviceDecodeScales, Fp8ScaleLayouts) {
  constexpr int64_t rows = 48, cols = 512;
  const auto values = random_values(size_t(rows * cols), 3, 0.1f);
  const int64_t block = GetParam();
  const quant::Fp8Quantized q = block == 0 ? quant::quantize_fp8_per_tensor(values, rows, cols)
                                           : quant::quantize_fp8_blockwise(values, rows, cols, block);
  Weight w;
  w.name = "fp8.weight";
  w.shape = {rows, cols};
  w.storage = DType::F8_E4M3;
  w.bytes = q.bytes;
  w.encoding = Encoding::BlockFp8;
  w.scale_layout = q.layout;
  w.scales = q.scales;
  w.scale_block = q.layout == ScaleLayout::PerBlock ? q.block : 0;
  expect_device_decode_matches(w);
}

INSTANTIATE_TEST_SUITE_P(Layouts, DeviceDecodeScales, testing::Values(0, 64, 128, 1000),
                         [](const auto& info) { return "block_" + std::to_string(info.param); });

}  // namespace
}  // namespace ditrun::test
