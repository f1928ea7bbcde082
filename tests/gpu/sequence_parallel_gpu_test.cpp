// Sequence and CFG parallelism on CUDA backends: ranks as threads on one GPU (each its own
// backend and arena), the exchanges staged through host memory as they run today. The shared
// call of a reference case (f32 mode) agrees with the CPU backend's one-rank call within the
// f32 tolerance of the reference tests, for Ulysses, ring attention (the f32 kernel's
// log-sum-exp) and CFG halves. The bf16 mode has no log-sum-exp (its kernels and cuDNN do not
// return it yet), so it refuses rings.
#include <gtest/gtest.h>


#include "gpu_test_support.h"
#include "reference_case.h"
#include "shared_call.h"
#include "runtime/core/error.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/backend/host_copy.h"
#include "runtime/cuda/cuda_backend.h"
#include "runtime/exec/model_call.h"
#include "runtime/sampling/noise.h"

namespace ditrun::test {
namespace {

std::unique_ptr<runtime::Backend> cuda_f32() {
  runtime::CudaBackendOptions o;
  o.precision = runtime::Precision::F32;
  o.arena_bytes = 1ull << 30;
  return runtime::make_cuda_backend(o);
}

struct Layout {
  std::string model;
  int sp = 1, cfg = 1;
};

// Rank 0's output of the call shared over CUDA backends, or the first rank's error.
HostTensor shared_call_on_cuda(const Layout& l, const runtime::HostTensors& inputs, std::string& error) {
  const SharedCallResult call = shared_reference_call(l.model, l.sp, l.cfg, 0, inputs, cuda_f32);
  if (error.empty()) error = call.first_error();
  return call.output;
}

class CudaSharedCall : public testing::TestWithParam<Layout> {};

TEST_P(CudaSharedCall, AgreesWithTheCpuOneRankCall) {
  DITRUN_REQUIRE_GPU();
  const Layout& l = GetParam();
  ReferenceCase cpu(l.model, "");
  const runtime::HostTensors inputs = reference_inputs(cpu.io);
  const HostTensor one = runtime::run_model(*cpu.backend, *cpu.network, *cpu.weights, inputs);
  std::string error;
  const HostTensor shared = shared_call_on_cuda(l, inputs, error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(shared.shape, one.shape);
  EXPECT_LT(max_abs_diff(shared, one), 1e-4);
}

// Flux: 4 heads (Ulysses at 2 and 4); Wan: 2 heads (Ulysses at 2), its CFG halves, both;
// Qwen-Image with its padded prompt under the text mask (Ulysses, CFG halves); SD3.5.
INSTANTIATE_TEST_SUITE_P(Layouts, CudaSharedCall,
                         testing::Values(Layout{"flux-tiny-dev", 2, 1}, Layout{"flux-tiny-dev", 4, 1},
                                         Layout{"wan21-tiny-t2v", 2, 1}, Layout{"wan21-tiny-t2v", 1, 2},
                                         Layout{"wan21-tiny-t2v", 2, 2}, Layout{"qwen-image-tiny", 2, 1},
                                         Layout{"qwen-image-tiny", 1, 2}, Layout{"sd35-tiny", 2, 1}),
                         [](const testing::TestParamInfo<Layout>& info) {
                           return test_label(info.param.model + "_sp" + std::to_string(info.param.sp) + "_cfg" +
                                             std::to_string(info.param.cfg));
                         });

// Ring attention's partial results: the f32 kernel's log-sum-exp against the CPU twin's.
TEST(CudaSharedCall, AttentionLogSumExpMatchesTheCpu) {
  DITRUN_REQUIRE_GPU();
  auto gpu = cuda_f32();
  auto cpu = runtime::make_cpu_backend();
  ASSERT_TRUE(gpu->has_attention_lse());
  const int64_t B = 2, lq = 90, lk = 200, heads = 4, c = heads * 64;
  const HostTensor hq = runtime::seeded_noise(1, {B, lq, c}), hk = runtime::seeded_noise(2, {B, lk, c}),
                   hv = runtime::seeded_noise(3, {B, lk, c});
  const std::vector<int64_t> kv_lens{200, 77};
  HostTensor results[2][2];
  runtime::Backend* backends[2] = {cpu.get(), gpu.get()};
  for (int i = 0; i < 2; ++i) {
    runtime::Backend& be = *backends[i];
    const Tensor q = runtime::to_backend(be, hq.data, hq.shape), k = runtime::to_backend(be, hk.data, hk.shape),
                 v = runtime::to_backend(be, hv.data, hv.shape);
    Tensor out = be.empty({B, lq, c}), lse = be.empty({B, lq, heads});
    be.attention_lse(q, k, v, out, lse, heads, kv_lens);
    results[i][0] = runtime::to_host(be, out);
    results[i][1] = runtime::to_host(be, lse);
  }
  EXPECT_LT(max_abs_diff(results[1][0], results[0][0]), 1e-5);
  EXPECT_LT(max_abs_diff(results[1][1], results[0][1]), 1e-5);
}

// Ring attention on CUDA (f32 mode): Flux's 4 heads over 3 ranks (a ring of 3), Wan's 2 heads
// over 4 (Ulysses 2 x ring 2); bf16 mode has no log-sum-exp and says so.
TEST(CudaSharedCall, RingAttentionInF32AndItsRefusalInBf16) {
  DITRUN_REQUIRE_GPU();
  for (const Layout& l : {Layout{"flux-tiny-dev", 3, 1}, Layout{"wan21-tiny-t2v", 4, 1}}) {
    ReferenceCase cpu(l.model, "");
    const runtime::HostTensors inputs = reference_inputs(cpu.io);
    const HostTensor one = runtime::run_model(*cpu.backend, *cpu.network, *cpu.weights, inputs);
    std::string error;
    const HostTensor shared = shared_call_on_cuda(l, inputs, error);
    ASSERT_EQ(error, "") << l.model;
    EXPECT_LT(max_abs_diff(shared, one), 1e-4) << l.model;
  }
  runtime::CudaBackendOptions o;
  o.precision = runtime::Precision::BF16;
  o.arena_bytes = 1ull << 28;
  EXPECT_FALSE(runtime::make_cuda_backend(o)->has_attention_lse());
}

}  // namespace
}  // namespace ditrun::test
