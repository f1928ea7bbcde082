#include "kernels/cuda/cublaslt_gemm.h"

#include <cublasLt.h>

#include <spdlog/spdlog.h>

#include "runtime/core/error.h"

namespace ditrun::kernels::cuda {
namespace {

using cuda_plan::Epilogue;
using cuda_plan::GemmKey;
using cuda_plan::GemmPath;
using cuda_plan::ScaleMode;

void check(cublasStatus_t status, std::string_view what, const GemmKey* key = nullptr) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail("cuBLASLt: {}: {}{}", what, cublasLtGetStatusName(status),
       key ? fmt::format(" ({})", key->describe()) : std::string());
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    case DType::F8_E4M3: return CUDA_R_8F_E4M3;
    case DType::F8_E5M2: return CUDA_R_8F_E5M2;
    default: fail("cuBLASLt: {} is not a GEMM operand type", dtype_name(t));
  }
}

cublasLtEpilogue_t epilogue_of(Epilogue e) {
  switch (e) {
    case Epilogue::None: return CUBLASLT_EPILOGUE_DEFAULT;
    case Epilogue::Bias: return CUBLASLT_EPILOGUE_BIAS;
    case Epilogue::Gelu: return CUBLASLT_EPILOGUE_GELU;
    case Epilogue::BiasGelu: return CUBLASLT_EPILOGUE_GELU_BIAS;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

bool is_fp8(GemmPath p) { return p == GemmPath::Fp8Tensor || p == GemmPath::Fp8Row || p == GemmPath::Fp8Block128; }

}  // namespace

GemmDescriptors::GemmDescriptors(const GemmKey& key) {
  try {
    build(key);
  } catch (...) {
    release();  // a constructor that throws gets no destructor call
    throw;
  }
}

void GemmDescriptors::build(const GemmKey& key) {
  cublasLtMatmulDesc_t desc = nullptr;
  check(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul descriptor", &key);
  op = desc;
  const int32_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "TRANSA", &key);
  check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "TRANSB", &key);
  const uint32_t epilogue = epilogue_of(key.epilogue);
  check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue), "EPILOGUE",
        &key);
  if (key.epilogue == Epilogue::Bias || key.epilogue == Epilogue::BiasGelu) {
    const int32_t bias_type = cuda_type(key.d);
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof bias_type),
          "BIAS_DATA_TYPE", &key);
  }
  if (is_fp8(key.path) && (key.scale_a != ScaleMode::Scalar32F || key.scale_b != ScaleMode::Scalar32F)) {
    const int32_t mode_a = int32_t(key.scale_a), mode_b = int32_t(key.scale_b);
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode_a, sizeof mode_a),
          "A_SCALE_MODE", &key);
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode_b, sizeof mode_b),
          "B_SCALE_MODE", &key);
  }
  // Column-major: A is k x m read transposed, B is k x n, D is m x n.
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  check(cublasLtMatrixLayoutCreate(&la, cuda_type(key.a), uint64_t(key.k), uint64_t(key.m), key.lda), "layout A", &key);
  a = la;
  check(cublasLtMatrixLayoutCreate(&lb, cuda_type(key.b), uint64_t(key.k), uint64_t(key.n), key.ldb), "layout B", &key);
  b = lb;
  check(cublasLtMatrixLayoutCreate(&ld, cuda_type(key.d), uint64_t(key.m), uint64_t(key.n), key.ldd), "layout D", &key);
  d = ld;
}

GemmDescriptors::~GemmDescriptors() { release(); }

void GemmDescriptors::release() {
  if (d) cublasLtMatrixLayoutDestroy(static_cast<cublasLtMatrixLayout_t>(d));
  if (b) cublasLtMatrixLayoutDestroy(static_cast<cublasLtMatrixLayout_t>(b));
  if (a) cublasLtMatrixLayoutDestroy(static_cast<cublasLtMatrixLayout_t>(a));
  if (op) cublasLtMatmulDescDestroy(static_cast<cublasLtMatmulDesc_t>(op));
  op = a = b = d = nullptr;
}

struct CublasLtGemm::Plan {
  explicit Plan(const GemmKey& key) : descriptors(key) {}
  GemmDescriptors descriptors;
  cublasLtMatmulAlgo_t algo{};
  bool usable = false;
  std::string why;
  cublasLtMatmulDesc_t op() const { return static_cast<cublasLtMatmulDesc_t>(descriptors.op); }
  cublasLtMatrixLayout_t a() const { return static_cast<cublasLtMatrixLayout_t>(descriptors.a); }
  cublasLtMatrixLayout_t b() const { return static_cast<cublasLtMatrixLayout_t>(descriptors.b); }
  cublasLtMatrixLayout_t d() const { return static_cast<cublasLtMatrixLayout_t>(descriptors.d); }
};

CublasLtGemm::CublasLtGemm(size_t workspace_bytes) : workspace_bytes_(workspace_bytes) {
  cublasLtHandle_t h = nullptr;
  check(cublasLtCreate(&h), "cublasLtCreate");
  handle_ = h;
}

CublasLtGemm::~CublasLtGemm() {
  plans_.clear();
  if (handle_) cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

CublasLtGemm::Plan& CublasLtGemm::plan_for(const GemmKey& key) {
  auto found = plans_.find(key);
  if (found != plans_.end()) return *found->second;
  auto plan = std::make_unique<Plan>(key);
  cublasLtMatmulPreference_t pref = nullptr;
  check(cublasLtMatmulPreferenceCreate(&pref), "preference", &key);
  const uint64_t ws = workspace_bytes_;
  const uint32_t align = key.alignment;
  const uint32_t reductions = CUBLASLT_REDUCTION_SCHEME_NONE;  // no split-K: deterministic sums
  std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, decltype(&cublasLtMatmulPreferenceDestroy)> owned(
      pref, &cublasLtMatmulPreferenceDestroy);
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
        "MAX_WORKSPACE_BYTES", &key);
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reductions,
                                             sizeof reductions),
        "REDUCTION_SCHEME_MASK", &key);
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    check(cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof align), "MIN_ALIGNMENT", &key);
  cublasLtMatmulHeuristicResult_t result{};
  int found_count = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(static_cast<cublasLtHandle_t>(handle_), plan->op(),
                                                               plan->a(), plan->b(), plan->d(), plan->d(), pref, 1,
                                                               &result, &found_count);
  if (status != CUBLAS_STATUS_SUCCESS || found_count == 0) {
    plan->why = status != CUBLAS_STATUS_SUCCESS ? cublasLtGetStatusName(status) : "no algorithm";
  } else {
    plan->algo = result.algo;
    plan->usable = true;
    spdlog::debug("cuBLASLt plan: {} (workspace {} bytes, {} waves)", key.describe(), result.workspaceSize,
                  result.wavesCount);
  }
  return *plans_.emplace(key, std::move(plan)).first->second;
}

bool CublasLtGemm::supported(const GemmKey& key, std::string* why) {
  Plan& plan = plan_for(key);
  if (!plan.usable && why) *why = plan.why;
  return plan.usable;
}

void CublasLtGemm::run(const GemmKey& key, const GemmOperands& o, void* workspace, cudaStream_t stream) {
  Plan& plan = plan_for(key);
  if (!plan.usable) fail("cuBLASLt: no algorithm for {} ({})", key.describe(), plan.why);
  if (key.epilogue == Epilogue::Bias || key.epilogue == Epilogue::BiasGelu) {
    if (!o.bias) fail("cuBLASLt: {} needs a bias", key.describe());
    check(cublasLtMatmulDescSetAttribute(plan.op(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, &o.bias, sizeof o.bias),
          "BIAS_POINTER", &key);
  }
  if (is_fp8(key.path)) {
    if (!o.scale_a || !o.scale_b) fail("cuBLASLt: {} needs both scales", key.describe());
    check(cublasLtMatmulDescSetAttribute(plan.op(), CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &o.scale_a, sizeof o.scale_a),
          "A_SCALE_POINTER", &key);
    check(cublasLtMatmulDescSetAttribute(plan.op(), CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &o.scale_b, sizeof o.scale_b),
          "B_SCALE_POINTER", &key);
  }
  const float alpha = 1.0f, beta = 0.0f;
  check(cublasLtMatmul(static_cast<cublasLtHandle_t>(handle_), plan.op(), &alpha, o.a, plan.a(), o.b, plan.b(), &beta,
                       o.d, plan.d(), o.d, plan.d(), &plan.algo, workspace, workspace_bytes_, stream),
        "cublasLtMatmul", &key);
}

}  // namespace ditrun::kernels::cuda
