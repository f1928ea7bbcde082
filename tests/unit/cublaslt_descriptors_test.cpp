// cuBLASLt's descriptors for every GEMM path the CUDA backend takes, built on the host: the
// matmul descriptor with its transposes, epilogue, bias type and fp8 scale modes, and the
// three layouts. cuBLASLt builds these without a GPU (only the heuristic query and the matmul
// need one), so a wrong attribute type or size fails here, in CI, not on a rare GPU run.
#if DITRUN_HAVE_CUDA
#include <gtest/gtest.h>

#include "kernels/cuda/cublaslt_gemm.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cuda {
namespace {

using cuda_plan::Epilogue;
using cuda_plan::GemmKey;
using cuda_plan::GemmPath;
using cuda_plan::ScaleMode;

GemmKey key(GemmPath path, DType ab, DType d, Epilogue e, ScaleMode scales) {
  return GemmKey{path, ab, ab, d, 3072, 4608, 3072, 3072, 9216, 3072, e, scales, scales, 256};
}

TEST(CublasLtDescriptors, EveryPathBuildsWithoutAGpu) {
  const GemmKey keys[] = {
      key(GemmPath::F32, DType::F32, DType::F32, Epilogue::Bias, ScaleMode::Scalar32F),
      key(GemmPath::Bf16, DType::BF16, DType::BF16, Epilogue::BiasGelu, ScaleMode::Scalar32F),
      key(GemmPath::Bf16, DType::BF16, DType::BF16, Epilogue::Gelu, ScaleMode::Scalar32F),
      key(GemmPath::Bf16, DType::BF16, DType::BF16, Epilogue::None, ScaleMode::Scalar32F),
      key(GemmPath::Fp8Tensor, DType::F8_E4M3, DType::BF16, Epilogue::Bias, ScaleMode::Scalar32F),
      key(GemmPath::Fp8Row, DType::F8_E4M3, DType::BF16, Epilogue::Bias, ScaleMode::OuterVec32F),
      key(GemmPath::Fp8Block128, DType::F8_E4M3, DType::BF16, Epilogue::BiasGelu, ScaleMode::Vec128_32F),
  };
  for (const GemmKey& k : keys) {
    try {
      GemmDescriptors d(k);
      EXPECT_NE(d.op, nullptr);
      EXPECT_NE(d.a, nullptr);
      EXPECT_NE(d.b, nullptr);
      EXPECT_NE(d.d, nullptr);
    } catch (const Error& e) {
      ADD_FAILURE() << k.describe() << ": " << e.what();
    }
  }
}

TEST(CublasLtDescriptors, AnOperandTypeCuBlasLtLacksIsAClearError) {
  GemmKey k = key(GemmPath::Bf16, DType::Q4_K, DType::BF16, Epilogue::None, ScaleMode::Scalar32F);
  try {
    GemmDescriptors d(k);
    FAIL() << "a q4_K operand was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q4_K"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ditrun::kernels::cuda
#endif
