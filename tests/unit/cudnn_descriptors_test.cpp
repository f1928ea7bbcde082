// cuDNN's SDPA graph for the model shapes, built without a GPU: tensor, SDPA_FWD operation and
// operation-graph descriptors finalize with no device (heuristics and plans need one, and are
// checked by tests/gpu). Catches attribute names, types and dims cuDNN rejects, on every build
// that has CUDA.
#if DITRUN_HAVE_CUDA

#include <gtest/gtest.h>

#include <string>

#include "kernels/cuda/cudnn_attention.h"
#include "kernels/cuda_plan/attention_plan.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cuda {
namespace {

using cuda_plan::AttentionShape;

// q, k, v column slices of one fused [B, L, 3·H·D] buffer (self-attention), out packed.
AttentionShape fused_self(int64_t batch, int64_t heads, int64_t tokens, int64_t d) {
  AttentionShape s;
  s.dtype = DType::BF16;
  s.batch = batch;
  s.heads = heads;
  s.lq = s.lk = tokens;
  s.head_dim = d;
  s.q_row = s.k_row = s.v_row = 3 * heads * d;
  s.q_batch = s.k_batch = s.v_batch = tokens * 3 * heads * d;
  s.o_row = heads * d;
  s.o_batch = tokens * heads * d;
  return s;
}

// Wan cross-attention: q [B, Lq, H·D] packed; k, v slices of a fused [B, 512, 2·H·D] kv buffer.
AttentionShape cross(int64_t batch, int64_t heads, int64_t lq, int64_t lk, int64_t d) {
  AttentionShape s;
  s.dtype = DType::BF16;
  s.batch = batch;
  s.heads = heads;
  s.lq = lq;
  s.lk = lk;
  s.head_dim = d;
  s.q_row = s.o_row = heads * d;
  s.q_batch = s.o_batch = lq * heads * d;
  s.k_row = s.v_row = 2 * heads * d;
  s.k_batch = s.v_batch = lk * 2 * heads * d;
  return s;
}

void expect_graph_builds(const AttentionShape& s, bool mask) {
  ASSERT_EQ(cuda_plan::cudnn_sdpa_ineligible(s, mask), "");
  const cuda_plan::CudnnSdpaKey key = cuda_plan::cudnn_sdpa_key(s, mask);
  SdpaGraph g;
  ASSERT_NO_THROW(g = build_sdpa_graph(key, nullptr));
  EXPECT_EQ(g.tensors.size(), mask ? 7u : 5u);
  EXPECT_NE(g.op.get(), nullptr);
  EXPECT_NE(g.graph.get(), nullptr);
}

TEST(CudnnDescriptors, FluxSelfAttentionFinalizes) { expect_graph_builds(fused_self(1, 24, 4608, 128), false); }

TEST(CudnnDescriptors, WanCrossAttentionWithKvLengthsFinalizes) {
  expect_graph_builds(cross(2, 40, 75600, 512, 128), true);
  expect_graph_builds(cross(2, 40, 75600, 512, 128), false);
}

TEST(CudnnDescriptors, SmallHeadDimsFinalize) {
  expect_graph_builds(fused_self(2, 2, 77, 48), false);
  expect_graph_builds(fused_self(2, 2, 77, 256), true);
}

TEST(CudnnDescriptors, NonBf16KeyIsRefusedWithOneLine) {
  cuda_plan::CudnnSdpaKey key = cuda_plan::cudnn_sdpa_key(fused_self(1, 2, 16, 64), false);
  key.dtype = DType::F32;
  try {
    build_sdpa_graph(key, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

TEST(CudnnDescriptors, DescriptorCudnnRejectsIsAnErrorNamingTheCall) {
  cuda_plan::CudnnSdpaKey key = cuda_plan::cudnn_sdpa_key(fused_self(1, 2, 16, 64), false);
  key.head_dim = -4;  // a negative stride, which cuDNN's tensor finalize refuses
  try {
    build_sdpa_graph(key, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("finalize tensor descriptor"), std::string::npos) << what;
    EXPECT_NE(what.find("CUDNN_STATUS_BAD_PARAM"), std::string::npos) << what;
  }
}

TEST(CudnnDescriptors, FailedCallNamesTheCallAndStatus) {
  try {
    check_cudnn(CUDNN_STATUS_BAD_PARAM, "cudnnSomething");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cudnnSomething"), std::string::npos) << what;
    EXPECT_NE(what.find("BAD_PARAM"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace ditrun::kernels::cuda

#endif  // DITRUN_HAVE_CUDA
