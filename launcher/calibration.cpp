#include "launcher/calibration.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "launcher/device_inventory.h"
#include "launcher/median_timer.h"
#include "runtime/core/error.h"
#include "runtime/core/parallel.h"

namespace ditrun::launcher {

namespace {

using runtime::Backend;

// The first "model name" of /proc/cpuinfo ("AMD EPYC 7763 64-Core Processor"); some ARM
// hosts and containers do not say.
std::string host_cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    const size_t colon = line.find(':');
    if (!line.starts_with("model name") || colon == std::string::npos) continue;
    const size_t begin = line.find_first_not_of(" \t", colon + 1);
    if (begin != std::string::npos) return line.substr(begin);
  }
  return "unknown CPU";
}

std::vector<float> random_values(int64_t count, uint32_t seed) {
  std::vector<float> values(static_cast<size_t>(count));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& v : values) v = uniform(rng);
  return values;
}

Tensor random_activation(Backend& backend, const Shape& shape, uint32_t seed) {
  Tensor t = backend.empty(shape);
  const std::vector<float> values = random_values(shape_numel(shape), seed);
  backend.upload(values, t, backend.compute_stream());
  backend.synchronize(backend.compute_stream());  // `values` must outlive the upload
  return t;
}

// A calibration weight [hidden, inner] holding `storage`'s encoding of random values.
struct EncodedWeight {
  std::vector<uint8_t> bytes;
  Weight weight;
};

EncodedWeight encode_weight(int64_t rows, int64_t cols, DType storage) {
  EncodedWeight e;
  const std::vector<float> values = random_values(rows * cols, 2);
  e.bytes.resize(size_t(dtype_bytes(storage, rows * cols, "calibration weight")));
  quantize_from_f32(storage, values, e.bytes);
  e.weight.name = fmt::format("calibration.{}", dtype_name(storage));
  e.weight.shape = {rows, cols};
  e.weight.storage = storage;
  e.weight.bytes = e.bytes;
  e.weight.encoding = dtype_info(storage).kind == DTypeKind::Quantized ? Encoding::Gguf : Encoding::Plain;
  return e;
}

double linear_flops(Backend& backend, const CalibrationOptions& o, const Tensor& x, DType storage) {
  const EncodedWeight w = encode_weight(o.hidden, o.inner, storage);
  const runtime::DeviceWeight loaded = backend.load_weight(w.weight, backend.compute_stream());
  Tensor y = backend.empty({1, o.tokens, o.hidden});
  const double seconds = median_seconds_per_call(
      [&] {
        backend.linear(x, loaded, nullptr, y);
        backend.synchronize(backend.compute_stream());
      },
      o.seconds);
  return 2.0 * double(o.tokens) * double(o.hidden) * double(o.inner) / seconds;
}

double attention_flops(Backend& backend, const CalibrationOptions& o) {
  const int64_t width = o.attention_heads * o.head_dim;
  const Shape shape{1, o.attention_tokens, width};
  const Tensor q = random_activation(backend, shape, 3), k = random_activation(backend, shape, 4),
               v = random_activation(backend, shape, 5);
  Tensor out = backend.empty(shape);
  const double seconds = median_seconds_per_call(
      [&] {
        backend.attention(q, k, v, out, o.attention_heads, {});
        backend.synchronize(backend.compute_stream());
      },
      o.seconds);
  // q·kᵀ and softmax·v: 2·L·L·D multiply-adds each per head.
  const double tokens = double(o.attention_tokens);
  return 4.0 * tokens * tokens * double(width) / seconds;
}

// Activation bytes per second through the ops a block runs between its GEMMs, in a block's
// mix and counted as the blocks count them (runtime::Block::elementwise_elements): a
// modulated layer norm, an RMS norm per head and RoPE (read + write h each), tanh-GELU of a
// 4h-wide MLP activation, a gated residual (3h), at the calibration's tokens x hidden.
double elementwise_bytes_per_s(Backend& backend, const CalibrationOptions& o) {
  const int64_t tokens = o.tokens, h = o.hidden;
  const int64_t head = h % o.head_dim == 0 && o.head_dim % 2 == 0 ? o.head_dim : h;
  Tensor x = random_activation(backend, {1, tokens, h}, 11), y = backend.empty({1, tokens, h});
  const Tensor mod = random_activation(backend, {1, 6, h}, 12);
  const Tensor mlp_in = random_activation(backend, {1, tokens, 4 * h}, 13);
  Tensor mlp_out = backend.empty({1, tokens, 4 * h});
  const Tensor table = random_activation(backend, {1, tokens, head}, 14);
  std::vector<float> ones(size_t(head), 1.0f);
  Weight scale;
  scale.name = "calibration.rms_scale";
  scale.shape = {head};
  scale.storage = DType::F32;
  scale.bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(ones.data()), ones.size() * sizeof(float));
  const runtime::DeviceWeight rms_scale = backend.load_weight(scale, backend.compute_stream());
  const double seconds = median_seconds_per_call(
      [&] {
        backend.layer_norm_modulate(x, mod, 0, 1, 1e-6f, y);
        backend.rms_norm(y, y, rms_scale, head, 1e-6f);
        backend.rope(y, table, h / head);
        backend.gelu_tanh(mlp_in, mlp_out);
        backend.gated_add(x, y, mod, 2);
        backend.synchronize(backend.compute_stream());
      },
      o.seconds);
  const double elements = double(tokens) * double(2 * h + 2 * h + 2 * h + head + 2 * 4 * h + 3 * h);
  return elements * double(dtype_info(backend.activation_dtype()).block_bytes) / seconds;
}

// Bytes per second of every thread reading its share of a buffer far larger than the caches:
// what a CPU GEMM bound by its weights can get (the kernels decode weights on every thread).
double host_read_bytes_per_s(uint64_t bytes, int threads, double budget) {
  std::vector<uint64_t> buffer(std::max<uint64_t>(bytes / sizeof(uint64_t), 1), 1);  // touched: no page faults timed
  std::atomic<uint64_t> sink{0};
  const auto read_all = [&] {
    std::vector<std::thread> readers;
    const size_t n = buffer.size();
    for (int t = 0; t < threads; ++t)
      readers.emplace_back([&, t] {
        const size_t begin = n * size_t(t) / size_t(threads), end = n * size_t(t + 1) / size_t(threads);
        uint64_t sum = 0;
        for (size_t i = begin; i < end; ++i) sum += buffer[i];
        sink += sum;  // keeps the reads from being optimised away
      });
    for (auto& r : readers) r.join();
  };
  const double seconds = median_seconds_per_call(read_all, budget);
  if (sink.load() == 0) fail("calibration: the memory read summed to zero (a broken buffer)");
  return double(buffer.size() * sizeof(uint64_t)) / seconds;
}

// Bytes per second a device reads plus writes copying a large activation (backends whose
// memory the host cannot read directly).
double device_copy_bytes_per_s(Backend& backend, uint64_t bytes, double budget) {
  constexpr int64_t width = 1024;
  const int64_t element = dtype_info(backend.activation_dtype()).block_bytes;
  const int64_t rows = std::max<int64_t>(int64_t(bytes) / element / width, 1);
  const Tensor src = backend.zeros({1, rows, width});
  Tensor dst = backend.empty({1, rows, width});
  const double seconds = median_seconds_per_call(
      [&] {
        backend.copy(src, dst);
        backend.synchronize(backend.compute_stream());
      },
      budget);
  return 2.0 * double(rows * width) * double(element) / seconds;
}

// Pinned host memory -> device on a copy stream: the path of a streamed block.
double host_to_device_bytes_per_s(Backend& backend, uint64_t bytes, double budget) {
  const runtime::Buffer pinned = backend.allocate_pinned(bytes);
  std::memset(pinned.data, 1, bytes);  // touched: no page faults timed
  const runtime::Buffer device = backend.allocate_device(bytes);
  const runtime::Stream copies = backend.create_stream();
  const double seconds = median_seconds_per_call(
      [&] {
        backend.copy_to_device({pinned.data, bytes}, device, 0, copies);
        backend.synchronize(copies);
      },
      budget);
  return double(bytes) / seconds;
}

// The CPU backend's peers (pipeline stages as ranks or threads on one host) exchange
// activations through host memory, so a plain memcpy between two device buffers is their link.
double cpu_device_to_device_bytes_per_s(Backend& backend, uint64_t bytes, double budget) {
  const runtime::Buffer from = backend.allocate_device(bytes), to = backend.allocate_device(bytes);
  std::memset(from.data, 1, bytes);
  const double seconds = median_seconds_per_call([&] { std::memcpy(to.data, from.data, bytes); }, budget);
  return double(bytes) / seconds;
}

void check_options(const CalibrationOptions& o) {
  const std::pair<const char*, int64_t> sizes[] = {{"tokens", o.tokens},
                                                   {"hidden", o.hidden},
                                                   {"inner", o.inner},
                                                   {"attention tokens", o.attention_tokens},
                                                   {"attention heads", o.attention_heads},
                                                   {"head dim", o.head_dim}};
  for (const auto& [what, value] : sizes)
    if (value <= 0) fail("calibration: {} {} is not positive", what, value);
  if (o.stream_bytes < (1 << 20)) fail("calibration: stream buffer of {} bytes is under 1 MiB", o.stream_bytes);
  if (!std::isfinite(o.seconds) || o.seconds <= 0) fail("calibration: {} seconds per measurement is not positive", o.seconds);
  if (o.threads < 0) fail("calibration: {} threads is negative", o.threads);
  if (o.id.empty()) fail("calibration: the profile id is empty");
  const DTypeInfo& gguf = dtype_info(o.gguf_type);
  if (gguf.kind != DTypeKind::Quantized || !gguf.from_f32)
    fail("calibration: '{}' is not a GGUF type ditrun can write (use q8_0, q4_K, ...)", gguf.name);
  if (o.inner % gguf.block_elems != 0)
    fail("calibration: inner size {} is not a multiple of the {} block ({} elements)", o.inner, gguf.name,
         gguf.block_elems);
}

std::string today_utc() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &utc);
  return text;
}

// "85.3 GFLOP/s" for CPUs, "690.0 TFLOP/s" for GPUs: the unit follows the larger number.
std::string format_rate(double value, double scale_hint, const char* unit) {
  const bool tera = scale_hint >= 1e13;
  return fmt::format("{:.1f} {}{}", value / (tera ? 1e12 : 1e9), tera ? "T" : "G", unit);
}

}  // namespace

partition::HardwareProfile calibrate(Backend& backend, const CalibrationOptions& o) {
  check_options(o);
  const bool cpu = backend.device().kind == ditrun::DeviceKind::Cpu;
  const int threads = o.threads > 0 ? o.threads : int(host_threads());

  partition::HardwareProfile p = o.baseline;
  p.id = o.id;
  p.kind = cpu ? partition::HardwareKind::cpu : partition::HardwareKind::gpu;
  if (cpu) {
    p.model = fmt::format("{} ({} threads)", host_cpu_model(), threads);
    p.memory_bytes = read_host_memory().total_bytes;
    p.compute_capability = "";
  }
  partition::Throughput& t = p.throughput;
  t.gemm_flops.clear();
  {
    const Tensor x = random_activation(backend, {1, o.tokens, o.inner}, 1);
    t.gemm_flops["bf16"] = linear_flops(backend, o, x, DType::BF16);
    t.gemm_flops["fp8"] = linear_flops(backend, o, x, DType::F8_E4M3);
    t.gemm_flops["gguf"] = linear_flops(backend, o, x, o.gguf_type);
  }
  t.attention_flops = attention_flops(backend, o);
  t.elementwise_bytes_per_s = elementwise_bytes_per_s(backend, o);
  t.memory_bytes_per_s =
      cpu ? host_read_bytes_per_s(o.stream_bytes, threads, o.seconds) : device_copy_bytes_per_s(backend, o.stream_bytes, o.seconds);
  t.host_to_device_bytes_per_s = host_to_device_bytes_per_s(backend, o.stream_bytes, o.seconds);
  if (cpu) t.device_to_device_bytes_per_s = cpu_device_to_device_bytes_per_s(backend, o.stream_bytes, o.seconds);
  p.source = fmt::format(
      "ditrun bench --calibrate on {}, {}, {} activations, GEMM {}x{}x{} (gguf = {}), attention {} tokens x {} heads "
      "x {}{}",
      today_utc(), backend.name(), runtime::precision_name(backend.precision()), o.tokens, o.hidden, o.inner,
      dtype_name(o.gguf_type), o.attention_tokens, o.attention_heads, o.head_dim,
      cpu ? "" : fmt::format("; device->device from {}", o.baseline.id));
  return p;
}

std::string calibration_table(const partition::HardwareProfile& measured, const partition::HardwareProfile& baseline) {
  std::string out = fmt::format("{:<18} {:>16} {:>16} {:>8}\n", "", "measured", baseline.id, "ratio");
  const auto row = [&](const std::string& name, double mine, double theirs, const char* unit) {
    const double hint = std::max(mine, theirs);
    out += fmt::format("{:<18} {:>16} {:>16} {:>8}\n", name, format_rate(mine, hint, unit),
                       theirs > 0 ? format_rate(theirs, hint, unit) : "-",
                       theirs > 0 ? fmt::format("{:.3f}", mine / theirs) : "-");
  };
  const partition::Throughput &m = measured.throughput, &b = baseline.throughput;
  for (const auto& [cls, flops] : m.gemm_flops) {
    const auto it = b.gemm_flops.find(cls);
    row("gemm " + cls, flops, it == b.gemm_flops.end() ? 0 : it->second, "FLOP/s");
  }
  row("attention", m.attention_flops, b.attention_flops, "FLOP/s");
  row("memory", m.memory_bytes_per_s, b.memory_bytes_per_s, "B/s");
  row("elementwise", m.elementwise_bytes_per_s, b.elementwise_bytes_per_s, "B/s");
  row("host->device", m.host_to_device_bytes_per_s, b.host_to_device_bytes_per_s, "B/s");
  row("device->device", m.device_to_device_bytes_per_s, b.device_to_device_bytes_per_s, "B/s");
  return out;
}

}  // namespace ditrun::launcher
