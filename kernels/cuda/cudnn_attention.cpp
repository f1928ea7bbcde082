#include "kernels/cuda/cudnn_attention.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_kernels.h"
#include "kernels/cuda/cuda_check.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cuda {

using cuda_plan::CudnnSdpaKey;

void check_cudnn(cudnnStatus_t status, std::string_view call) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof detail);
  std::string message(detail);
  std::replace(message.begin(), message.end(), '\n', ' ');  // errors are one line
  if (message.empty()) fail("cuDNN: {}: {}", call, cudnnGetErrorString(status));
  fail("cuDNN: {}: {} ({})", call, cudnnGetErrorString(status), message);
}

CudnnDescriptor::CudnnDescriptor(cudnnBackendDescriptorType_t type, std::string_view what) {
  check_cudnn(cudnnBackendCreateDescriptor(type, &desc_), what);
}

CudnnDescriptor::~CudnnDescriptor() {
  if (desc_) cudnnBackendDestroyDescriptor(desc_);
}

CudnnDescriptor::CudnnDescriptor(CudnnDescriptor&& other) noexcept : desc_(other.desc_) { other.desc_ = nullptr; }

CudnnDescriptor& CudnnDescriptor::operator=(CudnnDescriptor&& other) noexcept {
  if (this != &other) {
    if (desc_) cudnnBackendDestroyDescriptor(desc_);
    desc_ = other.desc_;
    other.desc_ = nullptr;
  }
  return *this;
}

namespace {

void set(const CudnnDescriptor& d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
         const void* values, std::string_view what) {
  check_cudnn(cudnnBackendSetAttribute(d.get(), name, type, count, values), what);
}

void set_descriptor(const CudnnDescriptor& d, cudnnBackendAttributeName_t name, const CudnnDescriptor& value,
                    std::string_view what) {
  const cudnnBackendDescriptor_t raw = value.get();
  set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &raw, what);
}

// A tensor [d0, d1, d2, d3] with the given strides (elements), 16-byte aligned.
CudnnDescriptor tensor(int64_t uid, cudnnDataType_t type, std::array<int64_t, 4> dims, std::array<int64_t, 4> strides,
                       bool by_value = false) {
  CudnnDescriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR, "create tensor descriptor");
  const int64_t alignment = 16;
  set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor unique id");
  set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, "tensor data type");
  set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment, "tensor byte alignment");
  set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data(), "tensor dimensions");
  set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data(), "tensor strides");
  if (by_value) {
    const bool yes = true;
    set(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &yes, "tensor by value");
  }
  check_cudnn(cudnnBackendFinalize(t.get()), "finalize tensor descriptor");
  return t;
}

}  // namespace

SdpaGraph build_sdpa_graph(const CudnnSdpaKey& key, cudnnHandle_t handle) {
  if (key.dtype != DType::BF16) fail("cuDNN SDPA graph: {} is not bf16", dtype_name(key.dtype));
  const int64_t b = key.batch, h = key.heads, d = key.head_dim;
  SdpaGraph g;
  // Logical [b, h, s, d] over the physical [b, s, h·d] rows: head stride d, token stride = row stride.
  g.tensors.push_back(tensor(kSdpaQ, CUDNN_DATA_BFLOAT16, {b, h, key.lq, d}, {key.q_batch, d, key.q_row, 1}));
  g.tensors.push_back(tensor(kSdpaK, CUDNN_DATA_BFLOAT16, {b, h, key.lk, d}, {key.k_batch, d, key.k_row, 1}));
  g.tensors.push_back(tensor(kSdpaV, CUDNN_DATA_BFLOAT16, {b, h, key.lk, d}, {key.v_batch, d, key.v_row, 1}));
  g.tensors.push_back(tensor(kSdpaO, CUDNN_DATA_BFLOAT16, {b, h, key.lq, d}, {key.o_batch, d, key.o_row, 1}));
  g.tensors.push_back(tensor(kSdpaScale, CUDNN_DATA_FLOAT, {1, 1, 1, 1}, {1, 1, 1, 1}, true));
  if (key.padding_mask) {
    g.tensors.push_back(tensor(kSdpaSeqLenQ, CUDNN_DATA_INT32, {b, 1, 1, 1}, {1, 1, 1, 1}));
    g.tensors.push_back(tensor(kSdpaSeqLenKv, CUDNN_DATA_INT32, {b, 1, 1, 1}, {1, 1, 1, 1}));
  }

  g.op = CudnnDescriptor(CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR, "create SDPA_FWD operation");
  set_descriptor(g.op, CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC, g.tensors[0], "SDPA_FWD q");
  set_descriptor(g.op, CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC, g.tensors[1], "SDPA_FWD k");
  set_descriptor(g.op, CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC, g.tensors[2], "SDPA_FWD v");
  set_descriptor(g.op, CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC, g.tensors[3], "SDPA_FWD o");
  set_descriptor(g.op, CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC, g.tensors[4], "SDPA_FWD scale");
  if (key.padding_mask) {
    set_descriptor(g.op, CUDNN_ATTR_OPERATION_SDPA_FWD_SEQ_LEN_QDESC, g.tensors[5], "SDPA_FWD seq_len_q");
    set_descriptor(g.op, CUDNN_ATTR_OPERATION_SDPA_FWD_SEQ_LEN_KVDESC, g.tensors[6], "SDPA_FWD seq_len_kv");
  }
  check_cudnn(cudnnBackendFinalize(g.op.get()), "finalize SDPA_FWD operation");

  g.graph = CudnnDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "create operation graph");
  if (handle) set(g.graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "operation graph handle");
  set_descriptor(g.graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, g.op, "operation graph ops");
  check_cudnn(cudnnBackendFinalize(g.graph.get()), "finalize operation graph");
  return g;
}

struct CudnnAttention::Plan {
  std::string unsupported;  // empty when the plan below runs
  SdpaGraph graph;
  CudnnDescriptor heuristics;
  std::vector<CudnnDescriptor> configs;
  CudnnDescriptor plan;
  int64_t workspace = 0;
};

struct CudnnAttention::Call {
  cuda_plan::AttentionShape shape;
  bool mask = false;       // some kv length below lk
  std::string ineligible;  // the rules' reason, if any
  CudnnSdpaKey key;
};

namespace {

// The first engine config of `mode`'s heuristics whose plan finalizes within `limit` bytes of
// workspace, stored into `plan`; false (and why, in `why`) when there is none.
bool choose_engine(cudnnHandle_t handle, const SdpaGraph& graph, cudnnBackendHeurMode_t mode, size_t limit,
                   CudnnDescriptor& heuristics, std::vector<CudnnDescriptor>& configs, CudnnDescriptor& plan,
                   int64_t& workspace, std::string& why) {
  heuristics = CudnnDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "create engine heuristics");
  set_descriptor(heuristics, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph.graph, "heuristics operation graph");
  set(heuristics, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics mode");
  check_cudnn(cudnnBackendFinalize(heuristics.get()), "finalize engine heuristics");
  int64_t count = 0;
  check_cudnn(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                       0, &count, nullptr),
              "count heuristics results");
  configs.clear();
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "create engine config");
    raw.push_back(configs.back().get());
  }
  int64_t got = 0;
  if (count > 0)
    check_cudnn(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, raw.data()),
                "read heuristics results");
  int tried = 0;
  std::string last;
  for (int64_t i = 0; i < std::min(got, count); ++i) {
    ++tried;
    CudnnDescriptor candidate(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, "create execution plan");
    set(candidate, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "execution plan handle");
    set(candidate, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &raw[size_t(i)],
        "execution plan engine config");
    if (const cudnnStatus_t st = cudnnBackendFinalize(candidate.get()); st != CUDNN_STATUS_SUCCESS) {
      last = cudnnGetErrorString(st);
      continue;
    }
    int64_t bytes = 0, n = 0;
    check_cudnn(cudnnBackendGetAttribute(candidate.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                                         1, &n, &bytes),
                "execution plan workspace size");
    if (bytes < 0 || size_t(bytes) > limit) {
      last = fmt::format("needs {} bytes of workspace, above the {} limit", bytes, limit);
      continue;
    }
    plan = std::move(candidate);
    workspace = bytes;
    return true;
  }
  why = tried == 0 ? "no engine config" : fmt::format("none of {} engine configs finalized (last: {})", tried, last);
  return false;
}

}  // namespace

CudnnAttention::CudnnAttention(size_t workspace_limit) : workspace_limit_(workspace_limit) {
  check_cudnn(cudnnCreate(&handle_), "cudnnCreate");
  void* lens = nullptr;
  const cudaError_t err = cudaMalloc(&lens, 2 * cuda_plan::kCudnnMaxBatch * sizeof(int32_t));
  seq_lens_ = static_cast<int32_t*>(lens);
  if (err != cudaSuccess) {
    cudnnDestroy(handle_);
    check_cuda(err, "cudaMalloc (cuDNN sequence lengths)");
  }
}

CudnnAttention::~CudnnAttention() {
  plans_.clear();  // descriptors before the handle they name
  if (seq_lens_) cudaFree(seq_lens_);
  if (handle_) cudnnDestroy(handle_);
}

CudnnAttention::Call CudnnAttention::describe(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                              int64_t heads, std::span<const int64_t> kv_lens) const {
  Call c;
  c.shape = detail::attention_shape(q, k, v, out, heads, kv_lens);
  c.mask = std::any_of(kv_lens.begin(), kv_lens.end(), [&](int64_t len) { return len != c.shape.lk; });
  c.ineligible = cuda_plan::cudnn_sdpa_ineligible(c.shape, c.mask);
  if (c.ineligible.empty()) c.key = cuda_plan::cudnn_sdpa_key(c.shape, c.mask);
  return c;
}

const CudnnAttention::Plan& CudnnAttention::plan_for(const CudnnSdpaKey& key) {
  if (auto it = plans_.find(key); it != plans_.end()) return *it->second;
  auto p = std::make_unique<Plan>();
  try {
    p->graph = build_sdpa_graph(key, handle_);
    std::string why_a, why_fallback;
    if (!choose_engine(handle_, p->graph, CUDNN_HEUR_MODE_A, workspace_limit_, p->heuristics, p->configs, p->plan,
                       p->workspace, why_a) &&
        !choose_engine(handle_, p->graph, CUDNN_HEUR_MODE_FALLBACK, workspace_limit_, p->heuristics, p->configs,
                       p->plan, p->workspace, why_fallback))
      p->unsupported = fmt::format("heuristics A: {}; fallback: {}", why_a, why_fallback);
  } catch (const Error& e) {
    p->unsupported = e.what();
  }
  return *plans_.emplace(key, std::move(p)).first->second;
}

bool CudnnAttention::supports(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, int64_t heads,
                              std::span<const int64_t> kv_lens, std::string* why) {
  const Call c = describe(q, k, v, out, heads, kv_lens);
  const std::string& no = c.ineligible.empty() ? plan_for(c.key).unsupported : c.ineligible;
  if (why) *why = no.empty() ? std::string() : "cuDNN SDPA: " + no;
  return no.empty();
}

size_t CudnnAttention::workspace_bytes(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                       int64_t heads, std::span<const int64_t> kv_lens) {
  const Call c = describe(q, k, v, out, heads, kv_lens);
  if (!c.ineligible.empty()) return 0;
  const Plan& p = plan_for(c.key);
  return p.unsupported.empty() ? size_t(p.workspace) : 0;
}

void CudnnAttention::run(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
                         std::span<const int64_t> kv_lens, void* workspace, size_t workspace_bytes,
                         cudaStream_t stream) {
  const Call c = describe(q, k, v, out, heads, kv_lens);
  if (!c.ineligible.empty()) fail("attention (cuDNN): {}", c.ineligible);
  const Plan& p = plan_for(c.key);
  if (!p.unsupported.empty()) fail("attention (cuDNN): {}", p.unsupported);
  if (workspace_bytes < size_t(p.workspace))
    fail("attention (cuDNN): the plan needs {} bytes of workspace, {} given", p.workspace, workspace_bytes);

  const cuda_plan::AttentionShape& s = c.shape;
  int32_t* q_lens = seq_lens_;
  int32_t* kv_lens_dev = seq_lens_ + cuda_plan::kCudnnMaxBatch;
  if (c.mask) {
    detail::SeqLens lens{};
    lens.count = int32_t(s.batch);
    lens.lq = int32_t(s.lq);
    // A length of 0 runs as 1 (a fully masked row is not defined behaviour for every engine);
    // those items' outputs are zeroed below.
    for (int64_t b = 0; b < s.batch; ++b) lens.kv[b] = int32_t(std::max<int64_t>(kv_lens[size_t(b)], 1));
    check_cuda(detail::launch_fill_seq_lens(lens, q_lens, kv_lens_dev, stream), "attention (cuDNN sequence lengths)");
  }

  const float scale = float(1.0 / std::sqrt(double(s.head_dim)));
  std::vector<int64_t> uids = {kSdpaQ, kSdpaK, kSdpaV, kSdpaO, kSdpaScale};
  std::vector<void*> pointers = {q.data(), k.data(), v.data(), out.data(), const_cast<float*>(&scale)};
  if (c.mask) {
    uids.insert(uids.end(), {kSdpaSeqLenQ, kSdpaSeqLenKv});
    pointers.insert(pointers.end(), {q_lens, kv_lens_dev});
  }
  CudnnDescriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, "create variant pack");
  set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, int64_t(uids.size()), uids.data(),
      "variant pack ids");
  set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, int64_t(pointers.size()), pointers.data(),
      "variant pack pointers");
  set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace, "variant pack workspace");
  check_cudnn(cudnnBackendFinalize(pack.get()), "finalize variant pack");
  check_cudnn(cudnnSetStream(handle_, stream), "cudnnSetStream");
  check_cudnn(cudnnBackendExecute(handle_, p.plan.get(), pack.get()), "cudnnBackendExecute (SDPA_FWD)");

  if (c.mask) {  // items without keys: zeros, as the CPU twin
    const size_t elem = 2;
    for (int64_t b = 0; b < s.batch; ++b) {
      if (kv_lens[size_t(b)] != 0) continue;
      char* rows = static_cast<char*>(out.data()) + size_t(b * s.o_batch) * elem;
      check_cuda(cudaMemset2DAsync(rows, size_t(s.o_row) * elem, 0, size_t(s.heads * s.head_dim) * elem,
                                   size_t(s.lq), stream),
                 "attention (cuDNN): zero the outputs of items without keys");
    }
  }
}

}  // namespace ditrun::kernels::cuda
