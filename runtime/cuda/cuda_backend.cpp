// The CUDA backend (see cuda_backend.h): memory from one DeviceArena, CUDA streams and events,
// and the kernels of kernels/cuda on the compute stream.
#include "runtime/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <memory>
#include <type_traits>
#include <cstring>
#include <mutex>
#include <vector>

#include "kernels/cuda/attention.h"
#include "kernels/cuda_plan/attention_plan.h"
#include "kernels/cuda/conv_ops.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cudnn_attention.h"
#include "kernels/cuda/dequantize.h"
#include "kernels/cuda/linear.h"
#include "runtime/core/units.h"
#include "runtime/core/error.h"
#include "runtime/core/float_codecs.h"
#include "runtime/cuda/device_arena.h"

namespace ditrun::runtime {
namespace {

namespace kc = kernels::cuda;
using kc::check_cuda;
using kc::ScratchUse;

constexpr uint64_t kStagingBytes = 64ull << 20;  // per staging buffer (two)
constexpr uint64_t kGemmWorkspaceBytes = 32ull << 20;  // cuBLAS's recommendation for Hopper
constexpr uint64_t kAttentionWorkspaceLimit = 256ull << 20;

// What DeviceWeight::memory holds: the kernels' view of the weight and what keeps its device
// memory (and the host scales being copied) alive.
struct CudaWeight {
  kc::WeightRef ref;
  std::vector<std::shared_ptr<void>> holds;
  std::vector<float> a_scales_host;
};

const CudaWeight& cuda_weight(std::string_view op, const DeviceWeight& w) {
  if (!w.source || !w.memory) fail("{}: weight '{}' was not loaded by the CUDA backend", op, w.source ? w.source->name : "?");
  return *static_cast<const CudaWeight*>(w.memory.get());
}

bool is_plain_param(const Weight& w) {
  return w.scale_layout == ScaleLayout::None &&
         (w.storage == DType::F32 || w.storage == DType::BF16 || w.storage == DType::F16);
}

// CUDA handles that release themselves, so a constructor that fails half-way leaks nothing.
struct StreamDeleter {
  void operator()(cudaStream_t s) const { cudaStreamDestroy(s); }
};
struct EventDeleter {
  void operator()(cudaEvent_t e) const { cudaEventDestroy(e); }
};
struct PinnedDeleter {
  void operator()(uint8_t* p) const { cudaFreeHost(p); }
};
using UniqueStream = std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDeleter>;
using UniqueEvent = std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, EventDeleter>;
using UniquePinned = std::unique_ptr<uint8_t, PinnedDeleter>;

UniqueStream make_stream(int priority, std::string_view what) {
  cudaStream_t s = nullptr;
  check_cuda(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority), what);
  return UniqueStream(s);
}

// Makes `device` current on the calling thread for the scope (backend calls may come from
// any thread of the process; CUDA's current device is per thread).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    int current = -1;
    cudaGetDevice(&current);
    if (current != device) check_cuda(cudaSetDevice(device), "cudaSetDevice");
  }
};

class CudaBackend final : public Backend, private kc::Scratch {
 public:
  explicit CudaBackend(const CudaBackendOptions& options) : options_(options), device_(options.device) {
    if (const auto why = cuda_unavailable_reason(device_)) fail("CUDA backend: {}", *why);
    DeviceGuard guard(device_);
    cudaDeviceProp prop{};
    check_cuda(cudaGetDeviceProperties(&prop, device_), "cudaGetDeviceProperties");
    device_name_ = prop.name;
    caps_ = {prop.major, prop.minor};
    total_bytes_ = prop.totalGlobalMem;
    int low = 0, high = 0;
    check_cuda(cudaDeviceGetStreamPriorityRange(&low, &high), "cudaDeviceGetStreamPriorityRange");
    copy_priority_ = low;
    compute_owner_ = make_stream(high, "create the compute stream");
    compute_ = compute_owner_.get();
    for (auto& s : staging_) {
      void* p = nullptr;
      check_cuda(cudaHostAlloc(&p, kStagingBytes, cudaHostAllocPortable), "pinned staging buffer");
      s.data.reset(static_cast<uint8_t*>(p));
      cudaEvent_t e = nullptr;
      check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "staging event");
      s.done.reset(e);
    }
    kc::LinearOptions lo;
    lo.caps = caps_;
    lo.fp8_gemm = options.fp8_gemm;
    lo.gemm_workspace_bytes = kGemmWorkspaceBytes;
    linear_ = std::make_unique<kc::LinearOp>(lo);
    if (options.attention != "auto" && options.attention != "cudnn" && options.attention != "flash")
      fail("CUDA backend: attention '{}' is not auto, cudnn or flash", options.attention);
    if (precision() == Precision::BF16 && options.attention != "flash") {
      try {
        cudnn_ = std::make_unique<kc::CudnnAttention>(kAttentionWorkspaceLimit);
      } catch (const Error& e) {
        if (options.attention == "cudnn") throw;
        spdlog::warn("cuDNN attention unavailable, using ditrun's flash kernel: {}", e.what());
      }
    }
    if (options.arena_bytes) planned_arena_bytes_ = options.arena_bytes;
  }

  ~CudaBackend() override {
    // Nothing queued may outlive the buffers and streams released below (in member order).
    cudaSetDevice(device_);
    cudaDeviceSynchronize();
  }

  std::string name() const override {
    return fmt::format("cuda:{} ({}, sm_{}{}, {})", device_, device_name_, caps_.cc_major, caps_.cc_minor,
                       format_bytes(total_bytes_));
  }
  Device device() const override { return Device{DeviceKind::Cuda, device_}; }
  Precision precision() const override { return options_.precision; }
  DType activation_dtype() const override { return precision() == Precision::F32 ? DType::F32 : DType::BF16; }

  // ---- memory
  Tensor empty(const Shape& shape) override {
    const int64_t n = shape_numel(shape);
    if (n < 0) fail("CUDA backend: cannot allocate a tensor of shape {}", shape_string(shape));
    auto a = arena().allocate(uint64_t(n) * element_bytes(), [&] { return fmt::format("an activation {}", shape_string(shape)); });
    return Tensor(std::move(a.hold), a.data, activation_dtype(), shape, device());
  }
  Tensor zeros(const Shape& shape) override {
    Tensor t = empty(shape);
    DeviceGuard guard(device_);
    check_cuda(cudaMemsetAsync(t.data(), 0, size_t(t.numel()) * element_bytes(), compute_), "zeros");
    return t;
  }
  DeviceWeight load_weight(const Weight& w, Stream stream) override {
    DeviceGuard guard(device_);
    auto cw = std::make_shared<CudaWeight>();
    auto bytes = arena().allocate(w.bytes.size(), [&] { return fmt::format("weight '{}'", w.name); });
    staged_copy(w.bytes.data(), w.bytes.size(), bytes.data, cuda_stream(stream));
    cw->holds.push_back(bytes.hold);
    cw->ref.bytes = bytes.data;
    attach_scales(w, *cw, cuda_stream(stream));
    cw->ref.source = &w;
    const std::span<const uint8_t> device_bytes(bytes.data, w.bytes.size());
    return DeviceWeight{&w, device_bytes, std::move(cw)};
  }
  Buffer allocate_device(uint64_t bytes) override {
    auto a = arena().allocate(bytes, [&] { return fmt::format("a weight buffer of {}", format_bytes(bytes)); });
    return Buffer{std::move(a.hold), a.data, bytes};
  }
  Buffer allocate_pinned(uint64_t bytes) override {
    DeviceGuard guard(device_);
    void* p = nullptr;
    if (const cudaError_t err = cudaHostAlloc(&p, std::max<uint64_t>(bytes, 1), cudaHostAllocPortable); err != cudaSuccess) {
      cudaGetLastError();
      fail("pinned host memory: cudaHostAlloc of {} failed ({}); lower the host budget or stream fewer blocks",
           format_bytes(bytes), cudaGetErrorString(err));
    }
    std::shared_ptr<void> hold(p, [](void* q) { cudaFreeHost(q); });
    return Buffer{std::move(hold), static_cast<uint8_t*>(p), bytes};
  }
  void copy_to_device(std::span<const uint8_t> src, const Buffer& dst, uint64_t offset, Stream stream) override {
    if (!dst.data || offset > dst.bytes || src.size() > dst.bytes - offset)
      fail("copy_to_device: {} bytes at offset {} do not fit a buffer of {} bytes", src.size(), offset, dst.bytes);
    if (src.empty()) return;
    DeviceGuard guard(device_);
    check_cuda(cudaMemcpyAsync(dst.data + offset, src.data(), src.size(), cudaMemcpyHostToDevice, cuda_stream(stream)),
               "copy_to_device");
  }
  DeviceWeight bind_weight(const Weight& w, const Buffer& dst, uint64_t offset) override {
    if (!dst.data || offset > dst.bytes || w.bytes.size() > dst.bytes - offset)
      fail("bind_weight '{}': {} bytes at offset {} do not fit a buffer of {} bytes", w.name, w.bytes.size(), offset,
           dst.bytes);
    DeviceGuard guard(device_);
    auto cw = std::make_shared<CudaWeight>();
    cw->ref.source = &w;
    cw->ref.bytes = dst.data + offset;
    cw->holds.push_back(dst.memory);
    attach_scales(w, *cw, compute_);
    const std::span<const uint8_t> device_bytes(dst.data + offset, w.bytes.size());
    return DeviceWeight{&w, device_bytes, std::move(cw)};
  }
  MemoryStats memory_stats() const override {
    std::lock_guard lock(arena_mutex_);
    if (!arena_) return MemoryStats{planned_arena_bytes_, 0, 0};
    const ArenaStats s = arena_->stats();
    return MemoryStats{s.capacity_bytes, s.in_use_bytes, s.peak_bytes};
  }
  void reset_peak_memory() override {
    std::lock_guard lock(arena_mutex_);
    if (arena_) arena_->reset_peak();
  }
  void reserve_device_memory(uint64_t bytes) override {
    std::lock_guard lock(arena_mutex_);
    // A fixed size (--device-memory, or a plan's budget) stays; the layout's slack and
    // workspaces are estimates, so falling short of them is worth a warning, not a refusal:
    // an allocation that really does not fit fails naming itself.
    const uint64_t fixed = arena_ ? arena_->capacity() : options_.arena_bytes;
    if (fixed) {
      if (bytes > fixed)
        spdlog::warn("cuda:{}: the plan's layout asks for {} of device memory, the arena has {}", device_,
                     format_bytes(bytes), format_bytes(fixed));
      return;
    }
    planned_arena_bytes_ = bytes;
  }

  // ---- streams and events
  Stream compute_stream() override { return Stream{0}; }
  Stream create_stream() override {
    DeviceGuard guard(device_);
    UniqueStream s = make_stream(copy_priority_, "create a stream");
    std::lock_guard lock(streams_mutex_);
    streams_.push_back(std::move(s));
    return Stream{int(streams_.size())};
  }
  Event record_event(Stream stream) override {
    DeviceGuard guard(device_);
    cudaEvent_t e = nullptr;
    check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "create an event");
    std::shared_ptr<void> handle(e, [](void* p) { cudaEventDestroy(static_cast<cudaEvent_t>(p)); });
    check_cuda(cudaEventRecord(e, cuda_stream(stream)), "record an event");
    return Event{std::move(handle)};
  }
  void wait_event(Stream stream, const Event& event) override {
    if (!event.handle) fail("wait_event: an event this backend did not record");
    DeviceGuard guard(device_);
    check_cuda(cudaStreamWaitEvent(cuda_stream(stream), static_cast<cudaEvent_t>(event.handle.get()), 0), "wait_event");
  }
  void synchronize(Stream stream) override {
    DeviceGuard guard(device_);
    check_cuda(cudaStreamSynchronize(cuda_stream(stream)), "synchronize (an earlier kernel or copy failed)");
  }
  bool event_complete(const Event& event) override {
    if (!event.handle) fail("event_complete: an event this backend did not record");
    DeviceGuard guard(device_);
    const cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(event.handle.get()));
    if (status == cudaErrorNotReady) {
      cudaGetLastError();  // not an error: clear it
      return false;
    }
    check_cuda(status, "event_complete (an earlier kernel or copy failed)");
    return true;
  }
  void* native_stream(Stream stream) override { return cuda_stream(stream); }

  // ---- copies
  void upload(std::span<const float> host, Tensor& dst, Stream stream) override {
    if (dst.device() != device() || dst.dtype() != activation_dtype() || !dst.contiguous() ||
        int64_t(host.size()) != dst.numel())
      fail("upload: {} host values into {} (needs a contiguous {} tensor on {} of as many elements)", host.size(),
           dst.describe(), dtype_name(activation_dtype()), device().str());
    if (host.empty()) return;
    DeviceGuard guard(device_);
    const cudaStream_t s = cuda_stream(stream);
    if (dst.dtype() == DType::F32) {
      check_cuda(cudaMemcpyAsync(dst.data(), host.data(), host.size_bytes(), cudaMemcpyHostToDevice, s), "upload");
    } else {
      std::vector<uint16_t> bits(host.size());
      for (size_t i = 0; i < host.size(); ++i) bits[i] = f32_to_bf16(host[i]);
      check_cuda(cudaMemcpyAsync(dst.data(), bits.data(), bits.size() * 2, cudaMemcpyHostToDevice, s), "upload");
      check_cuda(cudaStreamSynchronize(s), "upload");  // `bits` goes out of scope
      return;
    }
    check_cuda(cudaStreamSynchronize(s), "upload");  // the caller's buffer may go once we return
  }
  void download(const Tensor& src, std::span<float> host, Stream stream) override {
    if (int64_t(host.size()) != src.numel()) fail("download: {} into {} host values", src.describe(), host.size());
    if (host.empty()) return;
    DeviceGuard guard(device_);
    const cudaStream_t s = cuda_stream(stream);
    Tensor contiguous = src;
    if (src.dtype() != DType::F32 || !src.contiguous()) {
      auto a = arena().allocate(uint64_t(src.numel()) * 4, [&] { return fmt::format("a download of {}", src.describe()); });
      contiguous = Tensor(std::move(a.hold), a.data, DType::F32, src.shape(), device());
      kc::copy(src, contiguous, s);
    }
    check_cuda(cudaMemcpyAsync(host.data(), contiguous.data(), host.size_bytes(), cudaMemcpyDeviceToHost, s), "download");
    check_cuda(cudaStreamSynchronize(s), "download (an earlier kernel failed)");
  }
  void copy(const Tensor& src, Tensor& dst) override {
    DeviceGuard guard(device_);
    kc::copy(src, dst, compute_);
  }

  // ---- ops
  void linear(const Tensor& x, const DeviceWeight& w, const DeviceWeight* bias, Tensor& y) override {
    run_linear(x, w, bias, false, y);
  }
  void linear_gelu(const Tensor& x, const DeviceWeight& w, const DeviceWeight* bias, Tensor& y) override {
    run_linear(x, w, bias, true, y);
  }
  void layer_norm(const Tensor& x, Tensor& y, float eps, const DeviceWeight* gamma, const DeviceWeight* beta) override {
    DeviceGuard guard(device_);
    const kc::ParamRef g = gamma ? param(*gamma, ScratchUse::ParamA) : kc::ParamRef{};
    const kc::ParamRef b = beta ? param(*beta, ScratchUse::ParamB) : kc::ParamRef{};
    kc::layer_norm(x, y, eps, gamma ? &g : nullptr, beta ? &b : nullptr, compute_);
  }
  void layer_norm_modulate(const Tensor& x, const Tensor& mod, int shift_chunk, int scale_chunk, float eps,
                           Tensor& y) override {
    DeviceGuard guard(device_);
    kc::layer_norm_modulate(x, mod, shift_chunk, scale_chunk, eps, y, compute_);
  }
  void rms_norm(const Tensor& x, Tensor& y, const DeviceWeight& scale, int64_t group, float eps) override {
    DeviceGuard guard(device_);
    kc::rms_norm(x, y, param(scale, ScratchUse::ParamA), group, eps, compute_);
  }
  void rope(Tensor& x, const Tensor& table, int64_t heads) override {
    DeviceGuard guard(device_);
    kc::rope(x, table, heads, compute_);
  }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
                 std::span<const int64_t> kv_lens) override {
    DeviceGuard guard(device_);
    if (q.dtype() == DType::BF16 && heads > 0 && q.cols() / heads > kernels::cuda_plan::kFlashMaxHeadDim)
      return attention_in_f32(q, k, v, out, heads, kv_lens);
    if (cudnn_ && q.dtype() == DType::BF16) {
      std::string why;
      if (cudnn_->supports(q, k, v, out, heads, kv_lens, &why)) {
        const size_t ws = cudnn_->workspace_bytes(q, k, v, out, heads, kv_lens);
        cudnn_->run(q, k, v, out, heads, kv_lens, ws ? get(ScratchUse::Attention, ws) : nullptr, ws, compute_);
        return;
      }
      if (options_.attention == "cudnn") fail("attention: cuDNN cannot run q {} ({})", q.describe(), why);
      spdlog::debug("attention: cuDNN cannot run q {} ({}); using the flash kernel", q.describe(), why);
    }
    kc::flash_attention(q, k, v, out, heads, kv_lens, compute_);
  }
  // Ring attention's partial results: the f32 kernel writes the log-sum-exp (the bf16 kernels
  // and cuDNN do not return it yet), so the f32 mode has it.
  bool has_attention_lse() const override { return precision() == Precision::F32; }
  void attention_lse(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, Tensor& lse, int64_t heads,
                     std::span<const int64_t> kv_lens) override {
    DeviceGuard guard(device_);
    if (!has_attention_lse()) Backend::attention_lse(q, k, v, out, lse, heads, kv_lens);
    kc::flash_attention_lse(q, k, v, out, lse, heads, kv_lens, compute_);
  }
  // The f32 kernel adds the bias; bf16 mode converts around it.
  void attention_biased(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads, float scale,
                        const Tensor& bias, std::span<const int64_t> kv_lens) override {
    DeviceGuard guard(device_);
    if (q.dtype() == DType::F32) return kc::flash_attention_biased(q, k, v, out, heads, scale, bias, kv_lens, compute_);
    attention_in_f32(q, k, v, out, heads, kv_lens, scale, &bias);
  }
  void mul(const Tensor& a, const Tensor& b, Tensor& y) override {
    DeviceGuard guard(device_);
    kc::mul(a, b, y, compute_);
  }
  void gelu_tanh(const Tensor& x, Tensor& y) override {
    DeviceGuard guard(device_);
    kc::gelu_tanh(x, y, compute_);
  }
  void gelu(const Tensor& x, Tensor& y) override {
    DeviceGuard guard(device_);
    kc::gelu(x, y, compute_);
  }
  void silu(const Tensor& x, Tensor& y) override {
    DeviceGuard guard(device_);
    kc::silu(x, y, compute_);
  }
  void quick_gelu(const Tensor& x, Tensor& y) override {
    DeviceGuard guard(device_);
    kc::quick_gelu(x, y, compute_);
  }
  void add(const Tensor& a, const Tensor& b, Tensor& y) override {
    DeviceGuard guard(device_);
    kc::add(a, b, y, compute_);
  }
  void gated_add(Tensor& x, const Tensor& y, const Tensor& mod, int gate_chunk) override {
    DeviceGuard guard(device_);
    kc::gated_add(x, y, mod, gate_chunk, compute_);
  }
  // Convolution: im2col of a chunk of output positions into scratch, then the GEMM path every
  // weight encoding already has (the chunk bounds the scratch, as on the CPU).
  void conv3d(const Tensor& x, const Volume& in, const DeviceWeight& w, const DeviceWeight* bias, const ConvSpec& spec,
              Tensor& y) override {
    const Volume out = spec.output(in, "conv3d");
    check_volume_rows("conv3d", x, in, y, out);
    if (spec.pointwise()) return run_linear(x, w, bias, false, y);
    DeviceGuard guard(device_);
    const int64_t k = x.cols() * spec.taps(), positions = out.positions();
    const int64_t chunk = kc::conv_chunk_positions(k, positions);
    void* scratch = get(ScratchUse::ConvPatches, uint64_t(chunk * k) * element_bytes());
    for (int64_t b = 0; b < x.batch(); ++b) {
      for (int64_t p0 = 0; p0 < positions; p0 += chunk) {
        const int64_t n = std::min(chunk, positions - p0);
        Tensor patches(nullptr, scratch, activation_dtype(), Shape{1, n, k}, device());
        kc::im2col3d(x, b, in, spec, p0, patches, compute_);
        Tensor y_rows = y.slice_batch(b, 1).slice_rows(p0, n);
        run_linear(patches, w, bias, false, y_rows);
      }
    }
  }
  void group_norm(const Tensor& x, Tensor& y, int64_t groups, float eps, const DeviceWeight& gamma,
                  const DeviceWeight& beta) override {
    DeviceGuard guard(device_);
    auto* stats = static_cast<double*>(get(ScratchUse::GroupStats, uint64_t(2 * x.batch() * std::max<int64_t>(groups, 1)) * 8));
    kc::group_norm(x, y, groups, eps, param(gamma, ScratchUse::ParamA), param(beta, ScratchUse::ParamB), stats,
                   compute_);
  }
  void upsample2x(const Tensor& x, const Volume& in, Tensor& y) override {
    DeviceGuard guard(device_);
    kc::upsample2x(x, in, y, compute_);
  }
  void avg_down3d(const Tensor& x, const Volume& in, int64_t ft, int64_t fs, Tensor& y) override {
    DeviceGuard guard(device_);
    kc::avg_down3d(x, in, ft, fs, y, compute_);
  }
  void dup_up3d(const Tensor& x, const Volume& in, int64_t ft, int64_t fs, int64_t drop_front, Tensor& y) override {
    DeviceGuard guard(device_);
    kc::dup_up3d(x, in, ft, fs, drop_front, y, compute_);
  }
  Tensor dequantize(const DeviceWeight& w, const Shape& shape) override {
    const CudaWeight& cw = cuda_weight("dequantize", w);
    if (shape_numel(shape) != w.source->numel())
      fail("dequantize '{}': weight {} has {} values, shape {} holds {}", w.name(), shape_string(w.shape()),
           w.source->numel(), shape_string(shape), shape_numel(shape));
    Tensor t = empty(shape);
    DeviceGuard guard(device_);
    kc::dequantize(cw.ref, t.data(), activation_dtype(), compute_);
    return t;
  }

 private:
  uint64_t element_bytes() const { return precision() == Precision::F32 ? 4 : 2; }

  cuda::DeviceArena& arena() {
    std::lock_guard lock(arena_mutex_);
    if (!arena_) {
      DeviceGuard guard(device_);
      uint64_t bytes = planned_arena_bytes_;
      if (bytes == 0) {
        size_t free_b = 0, total_b = 0;
        check_cuda(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
        if (free_b <= options_.reserve_bytes)
          fail("cuda:{}: {} free, no more than the {} kept in reserve", device_, format_bytes(free_b),
               format_bytes(options_.reserve_bytes));
        bytes = free_b - options_.reserve_bytes;
      }
      arena_ = std::make_unique<cuda::DeviceArena>(bytes, device_);
      spdlog::info("{}: device arena of {}", name(), format_bytes(bytes));
    }
    return *arena_;
  }

  cudaStream_t cuda_stream(Stream s) {
    if (s.id == 0) return compute_;
    std::lock_guard lock(streams_mutex_);
    if (s.id < 0 || size_t(s.id) > streams_.size()) fail("CUDA backend: stream {} was not created by this backend", s.id);
    return streams_[size_t(s.id) - 1].get();
  }

  // Host bytes (pageable: a mapped checkpoint) to device memory through two pinned staging
  // buffers, so the copy engine runs at pinned speed while the CPU fills the other buffer.
  void staged_copy(const uint8_t* src, uint64_t n, uint8_t* dst, cudaStream_t stream) {
    std::lock_guard lock(staging_mutex_);
    for (uint64_t off = 0; off < n; off += kStagingBytes) {
      Staging& s = staging_[next_staging_];
      next_staging_ ^= 1;
      if (s.used) check_cuda(cudaEventSynchronize(s.done.get()), "weight upload");
      const uint64_t len = std::min(kStagingBytes, n - off);
      std::memcpy(s.data.get(), src + off, len);
      check_cuda(cudaMemcpyAsync(dst + off, s.data.get(), len, cudaMemcpyHostToDevice, stream), "weight upload");
      check_cuda(cudaEventRecord(s.done.get(), stream), "weight upload");
      s.used = true;
    }
  }

  // The weight's scales in device memory: as the file lays them out (decoding), and in
  // cuBLASLt's layout for weights that take an fp8 GEMM.
  void attach_scales(const Weight& w, CudaWeight& cw, cudaStream_t stream) {
    if (w.scale_layout != ScaleLayout::None && !w.scales.empty()) {
      auto s = arena().allocate(w.scales.size() * 4, [&] { return fmt::format("scales of '{}'", w.name); });
      staged_copy(reinterpret_cast<const uint8_t*>(w.scales.data()), w.scales.size() * 4, s.data, stream);
      cw.ref.scales = reinterpret_cast<const float*>(s.data);
      cw.holds.push_back(std::move(s.hold));
    }
    const auto path = linear_->path_for(w, activation_dtype()).path;
    using kernels::cuda_plan::GemmPath;
    if (path == GemmPath::Fp8Tensor || path == GemmPath::Fp8Row || path == GemmPath::Fp8Block128) {
      cw.a_scales_host = kernels::cuda_plan::scales_for_cublaslt(w).values;
      auto s = arena().allocate(cw.a_scales_host.size() * 4, [&] { return fmt::format("GEMM scales of '{}'", w.name); });
      staged_copy(reinterpret_cast<const uint8_t*>(cw.a_scales_host.data()), cw.a_scales_host.size() * 4, s.data, stream);
      cw.ref.a_scales = reinterpret_cast<const float*>(s.data);
      cw.holds.push_back(std::move(s.hold));
    }
  }

  // A small parameter as the kernels read it: its stored bytes when they are f32/bf16/f16,
  // else decoded to f32 into `use`'s scratch.
  kc::ParamRef param(const DeviceWeight& w, ScratchUse use) {
    const CudaWeight& cw = cuda_weight("parameter", w);
    const Weight& src = *w.source;
    kc::ParamRef p;
    p.count = src.numel();
    p.round_bf16 = precision() == Precision::BF16;
    if (is_plain_param(src)) {
      p.data = cw.ref.bytes;
      p.dtype = src.storage;
      return p;
    }
    void* decoded = get(use, uint64_t(src.numel()) * 4);
    kc::dequantize(cw.ref, decoded, DType::F32, compute_);
    p.data = decoded;
    p.dtype = DType::F32;
    return p;
  }

  void run_linear(const Tensor& x, const DeviceWeight& w, const DeviceWeight* bias, bool gelu, Tensor& y) {
    DeviceGuard guard(device_);
    const CudaWeight& cw = cuda_weight("linear", w);
    const kc::ParamRef b = bias ? param(*bias, ScratchUse::ParamA) : kc::ParamRef{};
    linear_->run(x, cw.ref, bias ? &b : nullptr, gelu, y, *this, compute_);
  }

  // Head dims beyond the bf16 kernel's (the VAEs' single-head mid blocks: 384, 512), and
  // biased attention (T5): q, k, v (and the bias) converted to f32, the f32 kernel, the result
  // rounded back to bf16.
  void attention_in_f32(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
                        std::span<const int64_t> kv_lens, float scale = 0.0f, const Tensor* bias = nullptr) {
    std::vector<cuda::DeviceArena::Allocation> holds;
    const auto f32_like = [&](const Tensor& t, bool copy) {
      holds.push_back(arena().allocate(uint64_t(t.numel()) * 4,
                                       [&] { return fmt::format("f32 attention operand {}", t.describe()); }));
      Tensor f(nullptr, holds.back().data, DType::F32, Shape{t.batch(), t.rows(), t.cols()}, device());
      if (copy) kc::copy(t, f, compute_);
      return f;
    };
    const Tensor q32 = f32_like(q, true), k32 = f32_like(k, true), v32 = f32_like(v, true);
    Tensor out32 = f32_like(out, false);
    if (bias) kc::flash_attention_biased(q32, k32, v32, out32, heads, scale, f32_like(*bias, true), kv_lens, compute_);
    else kc::flash_attention(q32, k32, v32, out32, heads, kv_lens, compute_);
    kc::copy(out32, out, compute_);
    // The operands go back to the arena once the stream has used them.
    check_cuda(cudaStreamSynchronize(compute_), "f32 attention");
  }

  // kc::Scratch: one buffer per use, grown in the arena (1/4 headroom) and kept.
  void* get(ScratchUse use, size_t bytes) override {
    auto& s = scratch_[size_t(use)];
    if (s.bytes < bytes || !s.data) {
      s = {};  // its range goes back first, so the larger buffer may reuse it
      const uint64_t want = std::max<uint64_t>(256, bytes + bytes / 4);
      auto a = arena().allocate(want, [&] { return fmt::format("kernel scratch ({} bytes)", bytes); });
      s.hold = std::move(a.hold);
      s.data = a.data;
      s.bytes = want;
    }
    return s.data;
  }

  struct Staging {
    UniquePinned data;
    UniqueEvent done;
    bool used = false;
  };
  struct ScratchBuffer {
    std::shared_ptr<void> hold;
    uint8_t* data = nullptr;
    uint64_t bytes = 0;
  };

  CudaBackendOptions options_;
  int device_;
  std::string device_name_;
  kernels::cuda_plan::DeviceCaps caps_;
  uint64_t total_bytes_ = 0;
  // Declared first of the CUDA resources, so destroyed last: everything below may use them.
  UniqueStream compute_owner_;
  cudaStream_t compute_ = nullptr;
  int copy_priority_ = 0;
  std::mutex streams_mutex_;
  std::vector<UniqueStream> streams_;
  mutable std::mutex arena_mutex_;
  uint64_t planned_arena_bytes_ = 0;
  std::unique_ptr<cuda::DeviceArena> arena_;
  std::mutex staging_mutex_;
  std::array<Staging, 2> staging_{};
  int next_staging_ = 0;
  std::array<ScratchBuffer, size_t(ScratchUse::Count)> scratch_{};
  std::unique_ptr<kc::LinearOp> linear_;
  std::unique_ptr<kc::CudnnAttention> cudnn_;
};

}  // namespace

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

std::optional<std::string> cuda_unavailable_reason(int device) {
  int count = 0;
  if (const cudaError_t err = cudaGetDeviceCount(&count); err != cudaSuccess) {
    cudaGetLastError();
    return fmt::format("no usable GPU ({}: {})", cudaGetErrorName(err), cudaGetErrorString(err));
  }
  if (count == 0) return std::string("no CUDA device is visible");
  if (device < 0 || device >= count) return fmt::format("device cuda:{} does not exist ({} visible)", device, count);
  return std::nullopt;
}

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

}  // namespace ditrun::runtime
