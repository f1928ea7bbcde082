// What the attention launchers hand the kernels (internal to kernels/cuda): one launch's
// arguments, passed by value so that kv lengths need no host-to-device copy, and the launch
// functions of the .cu files. Callers validate first (attention.h); these only launch.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda_plan/attention_plan.h"

namespace ditrun::kernels::cuda::detail {

// Key lengths of the batch items of one launch; count 0 means every item has all lk keys.
struct KvLens {
  int32_t len[cuda_plan::kFlashMaxKvLens];
  int32_t count;
};

// One launch of a flash kernel over grid.z = `items` batch items. Base pointers point at the
// launch's first batch item; strides are in elements.
struct FlashArgs {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  int64_t q_row, q_batch, k_row, k_batch, v_row, v_batch, o_row, o_batch;
  int32_t lq, lk, head_dim;
  float scale;       // 1 / sqrt(head_dim)
  float scale_log2;  // log2(e) / sqrt(head_dim): the bf16 kernel's exp2 domain
  KvLens kv;
  // f32 kernel only: each row's log-sum-exp of the scaled scores into lse[item][row][head]
  // (contiguous [B, Lq, H] f32; -inf without keys), for ring attention. Null: not written.
  float* lse;
  int32_t heads;
  // f32 kernel only: an additive bias on the scaled scores, bias[item·bias_batch +
  // (head·lq + row)·bias_row + key] (T5's relative positions; bias_batch 0 broadcasts). Null: none.
  const float* bias;
  int64_t bias_batch, bias_row;
};

// Launch the kernel `plan` names (plan.dtype, plan.bucket, plan.vectorized). Returns the
// launch status (cudaFuncSetAttribute's, then the launch's).
cudaError_t launch_flash_bf16(const cuda_plan::FlashPlan& plan, const FlashArgs& args, int64_t items,
                              cudaStream_t stream);
cudaError_t launch_flash_f32(const cuda_plan::FlashPlan& plan, const FlashArgs& args, int64_t items,
                             cudaStream_t stream);

// cuDNN's SEQ_LEN_Q / SEQ_LEN_KV arrays, written on the stream by a one-block kernel from
// lengths passed by value: q_lens[b] = lq, kv_lens[b] = kv[b] for b < count.
struct SeqLens {
  int32_t kv[cuda_plan::kCudnnMaxBatch];
  int32_t count;
  int32_t lq;
};
cudaError_t launch_fill_seq_lens(const SeqLens& lens, int32_t* q_lens, int32_t* kv_lens, cudaStream_t stream);

}  // namespace ditrun::kernels::cuda::detail
