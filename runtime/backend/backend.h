// The Backend interface: everything a model needs from a device (memory, streams and events,
// copies, and the ops of a diffusion transformer). The CPU backend and the CUDA backend
// implement it; model code (models/) is written only against it, so one model definition
// runs on both.
//
// Conventions shared by every op:
//   - Activations are Tensors of shape [B, L, C] (vectors [B, 1, C]) in the backend's
//     activation dtype; an op reads and writes views (see runtime/core/tensor.h), so the
//     output may be a column slice of a wider buffer. Shapes are checked; a mismatch is a
//     ditrun::Error naming the op and both shapes.
//   - Ops are issued on the compute stream in order. The CPU backend runs them when issued.
//   - Weights arrive as DeviceWeights, still in their storage type (any GGUF type, fp8 with
//     scales, bf16, ...): each backend decides how to compute with them.
//   - "Precision" is the arithmetic of activations: F32, or BF16 (activations rounded to
//     bfloat16 after every op, weights rounded to bfloat16, f32 accumulation, which is what
//     a bf16 GPU path computes).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "runtime/core/tensor.h"
#include "runtime/core/volume.h"
#include "runtime/core/weight.h"

namespace ditrun::runtime {

enum class Precision { F32, BF16 };
std::string_view precision_name(Precision p);

// Streams order work on a device; events mark a point in a stream that another stream (or
// the host) can wait for. The handles are opaque: the backend that made them interprets them.
struct Stream {
  int id = 0;  // 0 is the compute stream
};
struct Event {
  std::shared_ptr<void> handle;
};

// A weight made available to a backend's kernels, still in its storage type. `source` keeps
// the logical shape, storage type and scales; `bytes` is where this backend reads the stored
// bytes (CPU: the mapped file; CUDA: device memory).
struct DeviceWeight {
  const Weight* source = nullptr;
  std::span<const uint8_t> bytes;
  std::shared_ptr<void> memory;  // the backend's copy, when it made one

  const std::string& name() const { return source->name; }
  const Shape& shape() const { return source->shape; }
  int64_t rows() const { return source->rows(); }
  int64_t cols() const { return source->cols(); }
};

// Raw bytes a backend allocated: device memory (weight arenas, prefetch slots) or pinned host
// memory (the pool streamed blocks are copied from). Freed when the last copy goes.
struct Buffer {
  std::shared_ptr<void> memory;
  uint8_t* data = nullptr;
  uint64_t bytes = 0;
};

// Device memory in use by this backend: activations, weight buffers and loaded weights.
// `limit_bytes` is the budget the backend enforces (0: none, only the hardware's size).
struct MemoryStats {
  uint64_t limit_bytes = 0;
  uint64_t in_use_bytes = 0;
  uint64_t peak_bytes = 0;  // since creation or the last reset_peak_memory()
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string name() const = 0;  // "cpu (2 threads, OpenBLAS)", "cuda:0 (H100)"
  virtual Device device() const = 0;
  virtual Precision precision() const = 0;
  virtual DType activation_dtype() const = 0;

  // ---- memory
  virtual Tensor empty(const Shape& shape) = 0;  // activation dtype, uninitialised
  virtual Tensor zeros(const Shape& shape) = 0;
  // Makes `w` available to kernels (on `stream`, asynchronously where the device allows).
  // The Weight (and the memory its bytes point into) must outlive the DeviceWeight.
  virtual DeviceWeight load_weight(const Weight& w, Stream stream) = 0;
  // Device memory for weights that a WeightStore places itself. Fails (naming the budget)
  // rather than exceed the backend's memory limit.
  virtual Buffer allocate_device(uint64_t bytes) = 0;
  // Page-locked host memory, so copies from it to the device run asynchronously at full speed.
  virtual Buffer allocate_pinned(uint64_t bytes) = 0;
  // Copies host bytes (pinned for asynchrony) into dst at `offset`, ordered on `stream`.
  virtual void copy_to_device(std::span<const uint8_t> src, const Buffer& dst, uint64_t offset, Stream stream) = 0;
  // `w` with its stored bytes read from dst[offset, offset + w.bytes.size()) (where a
  // WeightStore copied them); scales and the logical shape still come from `w`.
  virtual DeviceWeight bind_weight(const Weight& w, const Buffer& dst, uint64_t offset) = 0;
  virtual MemoryStats memory_stats() const = 0;
  virtual void reset_peak_memory() = 0;
  // Sizes the device memory this backend allocates from, before its first allocation: a plan's
  // layout for this rank (runtime/memory/arena_layout.h). A backend that allocates as it goes
  // (the CPU backend) ignores it; the CUDA backend makes its one arena of that size. Later
  // calls fail when the arena exists with another size.
  virtual void reserve_device_memory(uint64_t bytes) {}

  // ---- streams and events
  virtual Stream compute_stream() = 0;
  virtual Stream create_stream() = 0;
  virtual Event record_event(Stream stream) = 0;
  virtual void wait_event(Stream stream, const Event& event) = 0;  // stream waits; host does not
  virtual void synchronize(Stream stream) = 0;                     // host waits
  virtual bool event_complete(const Event& event) = 0;             // host asks, does not wait
  // The stream as the device's own API knows it (a cudaStream_t), for transports that enqueue
  // work on it (NCCL); null for a backend without one.
  virtual void* native_stream(Stream stream) { return nullptr; }

  // ---- copies (host side is f32; conversion to the activation dtype happens here)
  virtual void upload(std::span<const float> host, Tensor& dst, Stream stream) = 0;  // dst contiguous
  virtual void download(const Tensor& src, std::span<float> host, Stream stream) = 0;
  virtual void copy(const Tensor& src, Tensor& dst) = 0;  // same shape, any views

  // ---- ops
  // y[b, l, :] = x[b, l, :] · Wᵀ (+ bias), W of logical shape [N, K] (a 5-D conv kernel
  // counts as [N, product of the rest]); f32 accumulation.
  virtual void linear(const Tensor& x, const DeviceWeight& w, const DeviceWeight* bias, Tensor& y) = 0;
  // Layer norm over the last dim, optionally with affine gamma/beta [C].
  virtual void layer_norm(const Tensor& x, Tensor& y, float eps, const DeviceWeight* gamma,
                          const DeviceWeight* beta) = 0;
  // adaLN: y = LN(x) · (1 + mod[b, scale_chunk, :]) + mod[b, shift_chunk, :], mod [B, n, C]
  // (or [1, n, C], broadcast over the batch).
  virtual void layer_norm_modulate(const Tensor& x, const Tensor& mod, int shift_chunk, int scale_chunk, float eps,
                                   Tensor& y) = 0;
  // RMS norm of every `group` consecutive columns (Flux: each head, group = D; Wan: the whole
  // width), times scale [group]: y = x · rsqrt(mean(x²) + eps) · scale. y may alias x.
  virtual void rms_norm(const Tensor& x, Tensor& y, const DeviceWeight& scale, int64_t group, float eps) = 0;
  // Rotary embedding in place on x [B, L, H·D]: adjacent pairs (2p, 2p+1) of every head are
  // rotated by the angle whose (cos, sin) are table[b, l, 2p], table[b, l, 2p+1];
  // table [B or 1, L, D] (batch 1 broadcasts).
  virtual void rope(Tensor& x, const Tensor& table, int64_t heads) = 0;
  // out = softmax(q kᵀ / sqrt(D)) v per batch item and head; q [B, Lq, H·D], k and v
  // [B, Lk, H·D]. kv_lens (empty, or one per batch item) masks keys at and after that length.
  // Memory is linear in the token counts (streaming softmax).
  virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
                         std::span<const int64_t> kv_lens) = 0;
  // attention, also writing each query row's log-sum-exp of the scaled scores into lse
  // [B, Lq, H] (f32 activations; −inf for a row with no keys): what ring attention merges
  // partial results with. Backends without it say so (has_attention_lse).
  virtual bool has_attention_lse() const { return false; }
  virtual void attention_lse(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse,
                             int64_t heads, std::span<const int64_t> kv_lens);
  // attention with the scores scale·q·kᵀ + bias[b or 0, h·Lq + i, j] (T5's relative position
  // bias: scale 1, a table per head); bias [B or 1, H·Lq, Lk] in the activation dtype.
  virtual void attention_biased(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
                                float scale, const Tensor& bias, std::span<const int64_t> kv_lens) = 0;
  // linear, then tanh-GELU of y: a backend with GEMM epilogues fuses the two; the default runs
  // the two ops (the CPU backend's results are exactly those of the two calls).
  virtual void linear_gelu(const Tensor& x, const DeviceWeight& w, const DeviceWeight* bias, Tensor& y) {
    linear(x, w, bias, y);
    gelu_tanh(y, y);
  }
  virtual void gelu_tanh(const Tensor& x, Tensor& y) = 0;  // y may alias x
  virtual void gelu(const Tensor& x, Tensor& y) = 0;       // exact: ½·x·(1 + erf(x/√2)); y may alias x
  virtual void silu(const Tensor& x, Tensor& y) = 0;       // y may alias x
  virtual void quick_gelu(const Tensor& x, Tensor& y) = 0; // x·sigmoid(1.702·x), CLIP's; y may alias x
  // y = a ⊙ b (same layout; T5's gated GELU). y may alias a.
  virtual void mul(const Tensor& a, const Tensor& b, Tensor& y) = 0;
  // y = a + b; b's batch may be 1 (broadcast). y may alias a.
  virtual void add(const Tensor& a, const Tensor& b, Tensor& y) = 0;
  // Gated residual: x += mod[b, gate_chunk, :] · y, mod [B, n, C] (or [1, n, C]).
  virtual void gated_add(Tensor& x, const Tensor& y, const Tensor& mod, int gate_chunk) = 0;
  // The weight's real values as an activation tensor of shape `shape` (same element count):
  // small parameters that enter arithmetic directly (Wan's modulation tables).
  virtual Tensor dequantize(const DeviceWeight& w, const Shape& shape) = 0;
  // ---- the convolutional ops of the VAEs: activations [B, T·H·W, C] over a Volume
  // (runtime/core/volume.h), channels last.
  // y = conv(x) + bias, W [C_out, C_in, kt, kh, kw] (or [C_out, C_in, kh, kw]) in its storage
  // type; y [B, spec.output(in) positions, C_out]. Memory beyond x and y stays bounded.
  virtual void conv3d(const Tensor& x, const Volume& in, const DeviceWeight& w, const DeviceWeight* bias,
                      const ConvSpec& spec, Tensor& y) = 0;
  // Group norm per batch item over all positions and each group's channels, affine [C]. y may alias x.
  virtual void group_norm(const Tensor& x, Tensor& y, int64_t groups, float eps, const DeviceWeight& gamma,
                          const DeviceWeight& beta) = 0;
  // Nearest ×2 in height and width, frame by frame.
  virtual void upsample2x(const Tensor& x, const Volume& in, Tensor& y) = 0;
  // Wan 2.2's parameter-free shortcuts (kernels/cpu/cpu_kernels.h states them exactly):
  // neighbourhoods folded into channels and averaged, and channels repeated and unfolded.
  virtual void avg_down3d(const Tensor& x, const Volume& in, int64_t ft, int64_t fs, Tensor& y) = 0;
  virtual void dup_up3d(const Tensor& x, const Volume& in, int64_t ft, int64_t fs, int64_t drop_front, Tensor& y) = 0;
};

}  // namespace ditrun::runtime
