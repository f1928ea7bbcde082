// cuDNN 9's fused scaled-dot-product attention (CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR,
// raw backend API) for bf16: the fast path of Backend::attention where the engine takes the
// shape; flash_attention (attention.h) is the fallback. Semantics as attention.h states them.
//
// Per shape (cuda_plan::CudnnSdpaKey: sizes, strides, dtype, padding mask or not) one plan is
// built on first use and cached: tensor descriptors in the strided BSHD layout, the SDPA op,
// the operation graph, heuristics (mode A, then fallback), and the first engine config whose
// execution plan finalizes within the workspace limit. A shape no engine takes is cached as
// unsupported with the reason. kv lengths become SEQ_LEN_Q / SEQ_LEN_KV tensors (cuDNN 9.15+)
// in a small device buffer filled on the stream by a kernel taking the lengths by value.
#pragma once

#include <cuda_runtime_api.h>
#include <cudnn_graph.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernels/cuda_plan/attention_plan.h"
#include "runtime/core/tensor.h"

namespace ditrun::kernels::cuda {

// A failed cuDNN call as a one-line ditrun::Error naming the call, cudnnGetErrorString and
// cuDNN's last error message.
void check_cudnn(cudnnStatus_t status, std::string_view call);

// One cuDNN backend descriptor, destroyed with its owner.
class CudnnDescriptor {
 public:
  CudnnDescriptor() = default;
  CudnnDescriptor(cudnnBackendDescriptorType_t type, std::string_view what);
  ~CudnnDescriptor();
  CudnnDescriptor(CudnnDescriptor&& other) noexcept;
  CudnnDescriptor& operator=(CudnnDescriptor&& other) noexcept;
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  cudnnBackendDescriptor_t get() const { return desc_; }

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
};

// Unique ids of the SDPA graph's tensors (the variant pack binds pointers to them).
enum SdpaUid : int64_t { kSdpaQ = 1, kSdpaK, kSdpaV, kSdpaO, kSdpaScale, kSdpaSeqLenQ, kSdpaSeqLenKv };

// The finalized SDPA forward graph of one key. With a null handle nothing touches a device:
// tensor, op and graph descriptors finalize without a GPU (the host tests build them);
// heuristics and plans need the handle.
struct SdpaGraph {
  std::vector<CudnnDescriptor> tensors;
  CudnnDescriptor op, graph;
};
SdpaGraph build_sdpa_graph(const cuda_plan::CudnnSdpaKey& key, cudnnHandle_t handle);

class CudnnAttention {
 public:
  // On the current device; plans needing more workspace than `workspace_limit` are skipped.
  explicit CudnnAttention(size_t workspace_limit);
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // Whether cuDNN runs this call: the eligibility rules, then the cached (or newly built)
  // plan of its shape. When not, *why (if given) says why in one line, for the log.
  bool supports(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, int64_t heads,
                std::span<const int64_t> kv_lens, std::string* why = nullptr);
  // Workspace the call's plan needs (at most workspace_limit()); 0 when not supported.
  size_t workspace_bytes(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, int64_t heads,
                         std::span<const int64_t> kv_lens);
  size_t workspace_limit() const { return workspace_limit_; }

  // Runs the call on `stream` (asynchronous); fails if supports() would say no, or if
  // `workspace_bytes` is below the plan's need (at most workspace_limit()). One stream at a
  // time: the sequence-length buffer and the handle are shared by all calls.
  void run(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
           std::span<const int64_t> kv_lens, void* workspace, size_t workspace_bytes, cudaStream_t stream);

 private:
  struct Plan;
  struct Call;
  Call describe(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, int64_t heads,
                std::span<const int64_t> kv_lens) const;
  const Plan& plan_for(const cuda_plan::CudnnSdpaKey& key);

  size_t workspace_limit_;
  cudnnHandle_t handle_ = nullptr;
  int32_t* seq_lens_ = nullptr;  // device: [kCudnnMaxBatch] query lengths, then [kCudnnMaxBatch] kv lengths
  std::unordered_map<cuda_plan::CudnnSdpaKey, std::unique_ptr<Plan>, cuda_plan::CudnnSdpaKeyHash> plans_;
};

}  // namespace ditrun::kernels::cuda
