// The CPU backend: host memory, and the kernels of kernels/cpu on f32 activations.
//
// Precision. Activations are always stored as f32 (activation_dtype() is F32). In BF16 mode
// every op rounds its outputs to bfloat16 values (round to nearest even), upload rounds what
// it stores, dequantize() rounds the weight's values, and linear rounds the decoded weights
// and its input to bf16 before an f32-accumulating GEMM: the arithmetic of a bf16 GPU path,
// so the two can be compared, without a second storage type on the host. copy() is exact.
//
// Memory. "Device memory" is host memory under a budget (CpuBackendOptions::device_memory_bytes,
// see cpu_memory.h): activations, weight buffers and loaded weights all charge it, and
// activations and weight buffers are ranges of one reserved arena, as on a GPU. load_weight
// copies nothing (the weight is used where its bytes lie, in the mapped file) but charges its
// bytes, as a resident weight occupies device memory; bind_weight reads a copy a WeightStore
// made in a device buffer.
//
// Streams (cpu_stream.h). Ops run on the calling thread when issued (the compute stream);
// other streams are worker threads, so a WeightStore's copies overlap compute as on a GPU.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include <map>
#include <mutex>
#include <optional>

#include "kernels/cpu/cpu_kernels.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/backend/cpu_memory.h"
#include "runtime/backend/cpu_stream.h"
#include "runtime/core/error.h"
#include "runtime/core/parallel.h"

namespace ditrun::runtime {
namespace {

namespace k = kernels::cpu;

// What DeviceWeight::memory holds for weights this backend made: the ledger charge of a loaded
// weight, or the weight rebound to a device buffer (and that buffer, kept alive).
struct CpuWeight {
  std::optional<Weight> bound;
  std::shared_ptr<void> hold;
};

// The Weight whose bytes the kernels read.
const Weight& source_of(std::string_view op, const DeviceWeight& w) {
  if (!w.source) fail("{}: a DeviceWeight without a source weight (was it loaded?)", op);
  if (w.memory) {
    const auto* cpu = static_cast<const CpuWeight*>(w.memory.get());
    if (cpu->bound) return *cpu->bound;
  }
  return *w.source;
}

void check_range(std::string_view op, const Buffer& dst, uint64_t offset, uint64_t bytes) {
  if (!dst.data || offset > dst.bytes || bytes > dst.bytes - offset)
    fail("{}: {} bytes at offset {} do not fit a buffer of {} bytes", op, bytes, offset, dst.bytes);
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const CpuBackendOptions& options)
      : precision_(options.precision),
        ledger_(std::make_shared<MemoryLedger>(options.device_memory_bytes)),
        arena_(arena_capacity(options.device_memory_bytes)) {
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
    Buffer b = charged(uint64_t(n) * sizeof(float), [&] { return fmt::format("an activation {}", shape_string(shape)); });
    return Tensor(std::move(b.memory), b.data, DType::F32, shape, device());
  }
  Tensor zeros(const Shape& shape) override {
    Tensor t = empty(shape);
    std::memset(t.data(), 0, size_t(t.numel()) * sizeof(float));
    return t;
  }
  DeviceWeight load_weight(const Weight& w, Stream) override {
    auto cpu = std::make_shared<CpuWeight>();
    cpu->hold = ledger_->charge(w.bytes.size(), [&] { return fmt::format("weight '{}'", w.name); });
    return DeviceWeight{&w, w.bytes, std::move(cpu)};
  }
  Buffer allocate_device(uint64_t bytes) override {
    return charged(bytes, [&] { return fmt::format("a weight buffer of {} bytes", bytes); });
  }
  Buffer allocate_pinned(uint64_t bytes) override {
    std::shared_ptr<uint8_t> data = allocate_aligned(bytes);
    uint8_t* p = data.get();
    return Buffer{std::move(data), p, bytes};
  }
  void copy_to_device(std::span<const uint8_t> src, const Buffer& dst, uint64_t offset, Stream stream) override {
    check_range("copy_to_device", dst, offset, src.size());
    if (src.empty()) return;
    uint8_t* to = dst.data + offset;
    if (stream.id == 0) {
      std::memcpy(to, src.data(), src.size());
      return;
    }
    // The task keeps the destination alive; the source must stay valid until the stream
    // reaches the copy, as with cudaMemcpyAsync.
    worker(stream).enqueue([to, src, keep = dst.memory] { std::memcpy(to, src.data(), src.size()); });
  }
  DeviceWeight bind_weight(const Weight& w, const Buffer& dst, uint64_t offset) override {
    check_range(fmt::format("bind_weight '{}'", w.name), dst, offset, w.bytes.size());
    auto cpu = std::make_shared<CpuWeight>();
    cpu->bound = w;
    cpu->bound->bytes = std::span<const uint8_t>(dst.data + offset, w.bytes.size());
    cpu->hold = dst.memory;
    const std::span<const uint8_t> bytes = cpu->bound->bytes;
    return DeviceWeight{&w, bytes, std::move(cpu)};
  }
  MemoryStats memory_stats() const override { return ledger_->stats(); }
  void reset_peak_memory() override { ledger_->reset_peak(); }

  // ---- streams and events
  Stream compute_stream() override { return Stream{0}; }
  Stream create_stream() override {
    std::lock_guard lock(streams_mutex_);
    const int id = int(streams_.size()) + 1;
    streams_.emplace(id, std::make_unique<CpuStream>());
    return Stream{id};
  }
  Event record_event(Stream stream) override {
    if (stream.id == 0) {  // everything issued on the compute stream has run
      auto done = std::make_shared<CpuEvent>();
      done->complete();
      return Event{std::move(done)};
    }
    return Event{worker(stream).record()};
  }
  void wait_event(Stream stream, const Event& event) override {
    auto cpu_event = std::static_pointer_cast<CpuEvent>(event.handle);
    if (!cpu_event) fail("wait_event: an event this backend did not record");
    if (stream.id == 0) cpu_event->wait();  // the compute stream is this thread
    else worker(stream).enqueue([cpu_event] { cpu_event->wait(); });
  }
  void synchronize(Stream stream) override {
    if (stream.id != 0) worker(stream).synchronize();
  }
  bool event_complete(const Event& event) override {
    auto cpu_event = std::static_pointer_cast<CpuEvent>(event.handle);
    if (!cpu_event) fail("event_complete: an event this backend did not record");
    return cpu_event->done();
  }

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
  bool has_attention_lse() const override { return true; }
  void attention_lse(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, int64_t heads,
                     std::span<const int64_t> kv_lens) override {
    k::attention(ctx_, q, k, v, out, heads, kv_lens, &lse);
  }
  void gelu_tanh(const Tensor& x, Tensor& y) override { k::gelu_tanh(ctx_, x, y); }
  void gelu(const Tensor& x, Tensor& y) override { k::gelu(ctx_, x, y); }
  void silu(const Tensor& x, Tensor& y) override { k::silu(ctx_, x, y); }
  void quick_gelu(const Tensor& x, Tensor& y) override { k::quick_gelu(ctx_, x, y); }
  void add(const Tensor& a, const Tensor& b, Tensor& y) override { k::add(ctx_, a, b, y); }
  void mul(const Tensor& a, const Tensor& b, Tensor& y) override { k::mul(ctx_, a, b, y); }
  void attention_biased(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads, float scale,
                        const Tensor& bias, std::span<const int64_t> kv_lens) override {
    k::attention_biased(ctx_, q, k, v, out, heads, scale, &bias, kv_lens);
  }
  void gated_add(Tensor& x, const Tensor& y, const Tensor& mod, int gate_chunk) override {
    k::gated_add(ctx_, x, y, mod, gate_chunk);
  }
  void conv3d(const Tensor& x, const Volume& in, const DeviceWeight& w, const DeviceWeight* bias, const ConvSpec& spec,
              Tensor& y) override {
    k::conv3d(ctx_, x, in, source_of("conv3d", w), bias ? &source_of("conv3d", *bias) : nullptr, spec, y);
  }
  void group_norm(const Tensor& x, Tensor& y, int64_t groups, float eps, const DeviceWeight& gamma,
                  const DeviceWeight& beta) override {
    k::group_norm(ctx_, x, y, groups, eps, source_of("group_norm", gamma), source_of("group_norm", beta));
  }
  void upsample2x(const Tensor& x, const Volume& in, Tensor& y) override { k::upsample2x(ctx_, x, in, y); }
  void avg_down3d(const Tensor& x, const Volume& in, int64_t ft, int64_t fs, Tensor& y) override {
    k::avg_down3d(ctx_, x, in, ft, fs, y);
  }
  void dup_up3d(const Tensor& x, const Volume& in, int64_t ft, int64_t fs, int64_t drop_front, Tensor& y) override {
    k::dup_up3d(ctx_, x, in, ft, fs, drop_front, y);
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
  // The arena's address range: the budget, plus room for the 256-byte rounding and gaps of
  // a heap (the ledger, not the arena, holds allocations to the budget exactly); without a
  // budget, the host's RAM. Reserved, not committed: pages appear as tensors touch them.
  static uint64_t arena_capacity(uint64_t budget) {
    if (budget > 0) return budget + budget / 4 + (64ull << 20);
    return uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
  }

  // Aligned memory from the arena that holds its charge on the device-memory ledger while it lives.
  Buffer charged(uint64_t bytes, const std::function<std::string()>& what) {
    auto charge = ledger_->charge(bytes, what);
    std::shared_ptr<uint8_t> data = arena_.allocate(bytes, what);
    uint8_t* p = data.get();
    auto memory = std::make_shared<std::pair<std::shared_ptr<uint8_t>, std::shared_ptr<void>>>(std::move(data),
                                                                                             std::move(charge));
    return Buffer{std::move(memory), p, bytes};
  }

  CpuStream& worker(Stream stream) {
    std::lock_guard lock(streams_mutex_);
    auto it = streams_.find(stream.id);
    if (it == streams_.end()) fail("cpu backend: stream {} was not created by this backend", stream.id);
    return *it->second;
  }

  Precision precision_;
  k::CpuContext ctx_;
  std::shared_ptr<MemoryLedger> ledger_;
  HostArena arena_;
  std::mutex streams_mutex_;
  std::map<int, std::unique_ptr<CpuStream>> streams_;  // destroyed (drained, joined) first
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace ditrun::runtime
