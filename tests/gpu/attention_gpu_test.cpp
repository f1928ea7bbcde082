// Attention on the GPU against the CPU twin (kernels::cpu::attention): the f32 kernel to 1e-4
// (std-1 inputs), the bf16 flash kernel and cuDNN's SDPA to 2e-2 on the same bf16-rounded
// inputs, each over the shapes the models produce: small head dims (padded buckets), Lq != Lk
// with kv lengths (one of them 0), q/k/v as column slices of a fused qkv buffer with the
// output a column slice too (whose other columns must stay untouched), batches, and a larger
// case. Outputs start as NaN, so an element a kernel never writes fails the comparison.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gpu_test_support.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cudnn_attention.h"
#include "runtime/core/error.h"
#include "runtime/core/float_codecs.h"

namespace ditrun::test {
namespace {

struct AttentionCase {
  std::string name;
  int64_t batch, heads, lq, lk, head_dim;
  std::vector<int64_t> kv_lens;
  bool fused = false;  // q, k, v slices of one [B, L, 3·H·D] buffer (needs lq == lk); out a slice of [B, Lq, 2·H·D]
};

std::ostream& operator<<(std::ostream& os, const AttentionCase& c) { return os << c.name; }

const std::vector<AttentionCase>& cases() {
  static const std::vector<AttentionCase> all = {
      {"d32", 2, 2, 77, 77, 32, {}},
      {"d48", 2, 2, 77, 77, 48, {}},
      {"d64", 1, 3, 77, 77, 64, {}},
      {"d128", 1, 2, 77, 77, 128, {}},
      {"d256", 1, 2, 100, 90, 256, {}},
      {"lq300_lk129_kvlens", 2, 3, 300, 129, 64, {100, 0}},
      {"lq300_lk129_kvlens_d128", 2, 2, 300, 129, 128, {129, 0}},
      {"fused_qkv", 2, 4, 200, 200, 64, {}, true},
      {"fused_qkv_d48_kvlens", 2, 2, 150, 150, 48, {150, 37}, true},
      {"fused_qkv_d128", 1, 3, 333, 333, 128, {}, true},
      {"large_l1000_d128_h4", 1, 4, 1000, 1000, 128, {}},
  };
  return all;
}

// Host operands of a case (f32 values, already bf16-rounded when `round`), the CPU result,
// and their device counterparts as the case lays them out.
struct Operands {
  std::vector<float> q, k, v, qkv, expected;
  Tensor dq, dk, dv, dout, dout_full;
};

std::vector<float> rounded(std::vector<float> x) {
  for (float& e : x) e = bf16_to_f32(f32_to_bf16(e));
  return x;
}

Operands make_operands(const AttentionCase& c, DType dtype) {
  Operands o;
  const int64_t width = c.heads * c.head_dim;
  const bool round = dtype == DType::BF16;
  std::vector<float> out_host(size_t(c.batch * c.lq * width), 0.0f);
  Tensor hq, hk, hv;
  if (c.fused) {
    o.qkv = random_values(size_t(c.batch * c.lq * 3 * width), 11);
    if (round) o.qkv = rounded(o.qkv);
    const Tensor h = host_tensor({c.batch, c.lq, 3 * width}, o.qkv);
    hq = h.slice_cols(0, width);
    hk = h.slice_cols(width, width);
    hv = h.slice_cols(2 * width, width);
    const Tensor d = device_tensor({c.batch, c.lq, 3 * width}, dtype, o.qkv);
    o.dq = d.slice_cols(0, width);
    o.dk = d.slice_cols(width, width);
    o.dv = d.slice_cols(2 * width, width);
    o.dout_full = device_tensor({c.batch, c.lq, 2 * width}, dtype,
                                std::vector<float>(size_t(c.batch * c.lq * 2 * width), std::nanf("")));
    o.dout = o.dout_full.slice_cols(width, width);
  } else {
    o.q = random_values(size_t(c.batch * c.lq * width), 1);
    o.k = random_values(size_t(c.batch * c.lk * width), 2);
    o.v = random_values(size_t(c.batch * c.lk * width), 3);
    if (round) {
      o.q = rounded(o.q);
      o.k = rounded(o.k);
      o.v = rounded(o.v);
    }
    hq = host_tensor({c.batch, c.lq, width}, o.q);
    hk = host_tensor({c.batch, c.lk, width}, o.k);
    hv = host_tensor({c.batch, c.lk, width}, o.v);
    o.dq = device_tensor({c.batch, c.lq, width}, dtype, o.q);
    o.dk = device_tensor({c.batch, c.lk, width}, dtype, o.k);
    o.dv = device_tensor({c.batch, c.lk, width}, dtype, o.v);
    o.dout = device_tensor({c.batch, c.lq, width}, dtype, std::vector<float>(out_host.size(), std::nanf("")));
  }
  Tensor hout = host_tensor({c.batch, c.lq, width}, out_host);
  kernels::cpu::attention(kernels::cpu::CpuContext{2, false}, hq, hk, hv, hout, c.heads, c.kv_lens);
  o.expected = out_host;
  return o;
}

void expect_close(const AttentionCase& c, Operands& o, double tolerance) {
  const std::vector<float> got = download(o.dout);
  const MaxDiff diff = max_abs_diff(got, o.expected);
  EXPECT_LE(diff.value, tolerance) << c.name << ": worst at element " << diff.index << " (got " << got[diff.index]
                                   << ", CPU " << o.expected[diff.index] << ")";
  if (o.dout_full.defined() && o.dout_full.data()) {  // the columns beside the output view stay NaN
    const std::vector<float> full = download(o.dout_full);
    const int64_t width = c.heads * c.head_dim;
    size_t touched = 0;
    for (size_t i = 0; i < full.size(); ++i)
      if (int64_t(i) % (2 * width) < width && !std::isnan(full[i])) ++touched;
    EXPECT_EQ(touched, 0u) << c.name << ": wrote outside the output view";
  }
}

class AttentionGpu : public testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionGpu, FlashF32MatchesCpu) {
  DITRUN_REQUIRE_GPU();
  const AttentionCase& c = GetParam();
  Operands o = make_operands(c, DType::F32);
  kernels::cuda::flash_attention(o.dq, o.dk, o.dv, o.dout, c.heads, c.kv_lens, nullptr);
  expect_close(c, o, 1e-4);
}

TEST_P(AttentionGpu, FlashBf16MatchesCpu) {
  DITRUN_REQUIRE_GPU();
  const AttentionCase& c = GetParam();
  Operands o = make_operands(c, DType::BF16);
  kernels::cuda::flash_attention(o.dq, o.dk, o.dv, o.dout, c.heads, c.kv_lens, nullptr);
  expect_close(c, o, 2e-2);
}

TEST_P(AttentionGpu, CudnnBf16MatchesCpu) {
  DITRUN_REQUIRE_GPU();
  const AttentionCase& c = GetParam();
  Operands o = make_operands(c, DType::BF16);
  kernels::cuda::CudnnAttention cudnn(256ull << 20);
  std::string why;
  if (!cudnn.supports(o.dq, o.dk, o.dv, o.dout, c.heads, c.kv_lens, &why)) GTEST_SKIP() << why;
  const size_t bytes = cudnn.workspace_bytes(o.dq, o.dk, o.dv, o.dout, c.heads, c.kv_lens);
  void* raw = nullptr;
  if (bytes) kernels::cuda::check_cuda(cudaMalloc(&raw, bytes), "cudaMalloc (cuDNN workspace)");
  const std::unique_ptr<void, cudaError_t (*)(void*)> workspace(raw, cudaFree);
  cudnn.run(o.dq, o.dk, o.dv, o.dout, c.heads, c.kv_lens, raw, bytes, nullptr);
  expect_close(c, o, 2e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionGpu, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<AttentionCase>& info) { return info.param.name; });

// The same call twice gives the same bits (no atomics, no order that depends on timing).
void expect_deterministic(DType dtype) {
  const AttentionCase c{"det", 2, 4, 1000, 700, 128, {700, 333}};
  Operands o = make_operands(c, dtype);
  kernels::cuda::flash_attention(o.dq, o.dk, o.dv, o.dout, c.heads, c.kv_lens, nullptr);
  const std::vector<float> first = download(o.dout);
  kernels::cuda::flash_attention(o.dq, o.dk, o.dv, o.dout, c.heads, c.kv_lens, nullptr);
  const std::vector<float> second = download(o.dout);
  ASSERT_EQ(first.size(), second.size());
  EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0);
}

TEST(AttentionGpuDeterminism, FlashBf16SameBitsTwice) {
  DITRUN_REQUIRE_GPU();
  expect_deterministic(DType::BF16);
}

TEST(AttentionGpuDeterminism, FlashF32SameBitsTwice) {
  DITRUN_REQUIRE_GPU();
  expect_deterministic(DType::F32);
}

TEST(AttentionGpuErrors, BadArgumentsAreOneLineErrors) {
  DITRUN_REQUIRE_GPU();
  const Tensor q = device_tensor({1, 8, 64}, DType::BF16, std::vector<float>(512, 0.0f));
  const Tensor q32 = device_tensor({1, 8, 64}, DType::F32, std::vector<float>(512, 0.0f));
  Tensor out = device_tensor({1, 8, 64}, DType::BF16, std::vector<float>(512, 0.0f));
  const std::vector<int64_t> too_long = {9};
  EXPECT_THROW(kernels::cuda::flash_attention(q, q, q, out, 3, {}, nullptr), Error);        // 64 % 3
  EXPECT_THROW(kernels::cuda::flash_attention(q, q32, q, out, 1, {}, nullptr), Error);      // dtypes differ
  EXPECT_THROW(kernels::cuda::flash_attention(q, q, q, out, 1, too_long, nullptr), Error);  // kv_len > Lk
  const Tensor wide = device_tensor({1, 8, 514}, DType::BF16, std::vector<float>(8 * 514, 0.0f));
  Tensor wide_out = device_tensor({1, 8, 514}, DType::BF16, std::vector<float>(8 * 514, 0.0f));
  try {
    kernels::cuda::flash_attention(wide, wide, wide, wide_out, 2, {}, nullptr);  // head dim 257
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("attention"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ditrun::test
