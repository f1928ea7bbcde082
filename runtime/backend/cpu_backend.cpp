// The CPU backend: host memory, and the kernels of kernels/cpu on f32 activations.
//
// Precision. Activations are always stored as f32 (activation_dtype() is F32). In BF16 mode
// every op rounds its outputs to bfloat16 values (round to nearest even), upload rounds what
// it stores, dequantize() rounds the weight's values, and linear rounds the decoded weights
// and its input to bf16 before an f32-accumulating GEMM: the arithmetic of a bf16 GPU path,
// so the two can be compared, without a second storage type on the host. copy() is exact.
//
// Streams are ids and events already-complete handles: every op runs when it is issued.
// Weights are used where their bytes lie (the mapped file): load_weight copies nothing.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include "kernels/cpu/cpu_kernels.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/core/parallel.h"

namespace ditrun::runtime {
namespace {

namespace k = kernels::cpu;

const Weight& source_of(std::string_view op, const DeviceWeight& w) {
  if (!w.source) fail("{}: a DeviceWeight without a source weight (was it loaded?)", op);
  return *w.source;
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const CpuBackendOptions& options) : precision_(options.precision) {
    if (options.threads < 0) fail("cpu backend: {} threads requested", options.threads);
    ctx_.threads = options.threads == 0 ? int(host_threads()) : options.threads;
    ctx_.round_bf16 = options.precision == Precision::BF16;
    // OpenBLAS is switched to one thread by the first GEMM kernel, not here: making a backend
    // alone changes nothing for other OpenBLAS users (see use_single_threaded_blas).
  }

  std::string name() const override {
    return fmt::format("cpu ({} thread{}, OpenBLAS)", ctx_.threads, ctx_.threads == 1 ? "" : "s");
  }
  Device device() const override { return Device{DeviceKind::Cpu, 0}; }
  Precision precision() const override { return precision_; }
  DType activation_dtype() const override { return DType::F32; }

  // ---- memory
  Tensor empty(const Shape& shape) override {
    const int64_t n = shape_numel(shape);
    if (n < 0) fail("cpu backend: cannot allocate a tensor of shape {}", shape_string(shape));
    // 64-byte aligned (cache lines, any SIMD width); at least one line so data() is never null.
    const size_t bytes = std::max<size_t>(64, (size_t(n) * sizeof(float) + 63) / 64 * 64);
    void* p = ::operator new(bytes, std::align_val_t(64));
    std::shared_ptr<void> memory(p, [](void* q) { ::operator delete(q, std::align_val_t(64)); });
    return Tensor(std::move(memory), p, DType::F32, shape, device());
  }
  Tensor zeros(const Shape& shape) override {
    Tensor t = empty(shape);
    std::memset(t.data(), 0, size_t(t.numel()) * sizeof(float));
    return t;
  }
  DeviceWeight load_weight(const Weight& w, Stream) override { return DeviceWeight{&w, w.bytes, nullptr}; }

  // ---- streams and events
  Stream compute_stream() override { return Stream{0}; }
  Stream create_stream() override { return Stream{next_stream_.fetch_add(1)}; }
  Event record_event(Stream) override { return Event{std::make_shared<int>(0)}; }
  void wait_event(Stream, const Event&) override {}
  void synchronize(Stream) override {}

  // ---- copies
  void upload(std::span<const float> host, Tensor& dst, Stream) override {
    if (dst.dtype() != DType::F32 || dst.device().kind != DeviceKind::Cpu || !dst.contiguous() ||
        int64_t(host.size()) != dst.numel())
      fail("upload: {} host values into {} (needs a contiguous f32 cpu tensor of as many elements)", host.size(),
           dst.describe());
    if (!host.empty()) std::memcpy(dst.data(), host.data(), host.size_bytes());
    if (ctx_.round_bf16) k::round_to_bf16(ctx_, dst);
  }
  void download(const Tensor& src, std::span<float> host, Stream) override {
    if (int64_t(host.size()) != src.numel())
      fail("download: {} into {} host values", src.describe(), host.size());
    Tensor dst(nullptr, host.data(), DType::F32, src.shape(), device());
    k::copy(ctx_, src, dst);
  }
  void copy(const Tensor& src, Tensor& dst) override { k::copy(ctx_, src, dst); }

  // ---- ops
  void linear(const Tensor& x, const DeviceWeight& w, const DeviceWeight* bias, Tensor& y) override {
    k::linear(ctx_, x, source_of("linear", w), bias ? &source_of("linear", *bias) : nullptr, y);
  }
  void layer_norm(const Tensor& x, Tensor& y, float eps, const DeviceWeight* gamma,
                  const DeviceWeight* beta) override {
    k::layer_norm(ctx_, x, y, eps, gamma ? &source_of("layer_norm", *gamma) : nullptr,
                  beta ? &source_of("layer_norm", *beta) : nullptr);
  }
  void layer_norm_modulate(const Tensor& x, const Tensor& mod, int shift_chunk, int scale_chunk, float eps,
                           Tensor& y) override {
    k::layer_norm_modulate(ctx_, x, mod, shift_chunk, scale_chunk, eps, y);
  }
  void rms_norm(const Tensor& x, Tensor& y, const DeviceWeight& scale, int64_t group, float eps) override {
    k::rms_norm(ctx_, x, y, source_of("rms_norm", scale), group, eps);
  }
  void rope(Tensor& x, const Tensor& table, int64_t heads) override { k::rope(ctx_, x, table, heads); }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
                 std::span<const int64_t> kv_lens) override {
    k::attention(ctx_, q, k, v, out, heads, kv_lens);
  }
  void gelu_tanh(const Tensor& x, Tensor& y) override { k::gelu_tanh(ctx_, x, y); }
  void silu(const Tensor& x, Tensor& y) override { k::silu(ctx_, x, y); }
  void add(const Tensor& a, const Tensor& b, Tensor& y) override { k::add(ctx_, a, b, y); }
  void gated_add(Tensor& x, const Tensor& y, const Tensor& mod, int gate_chunk) override {
    k::gated_add(ctx_, x, y, mod, gate_chunk);
  }
  Tensor dequantize(const DeviceWeight& w, const Shape& shape) override {
    const Weight& src = source_of("dequantize", w);
    if (shape_numel(shape) != src.numel())
      fail("dequantize '{}': weight {} has {} values, shape {} holds {}", src.name, shape_string(src.shape),
           src.numel(), shape_string(shape), shape_numel(shape));
    Tensor t = empty(shape);
    k::dequantize(ctx_, src, t);
    return t;
  }

 private:
  Precision precision_;
  k::CpuContext ctx_;
  std::atomic<int> next_stream_{1};
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace ditrun::runtime
