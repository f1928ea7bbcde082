// ditrun_bench_gpu: the CUDA backend measured against the GPU's physical limits and against
// the simplest alternative, in one run (scripts/gpu_check.sh runs it on an H100/H200):
//
//   gemm       Flux and Wan linear shapes, bf16 / fp8 per tensor / fp8 128-blocks / musubi
//              64-blocks / q8_0 / q4_K: TFLOP/s, share of the dense tensor-core peak, ratio
//              to the bf16 GEMM of the same shape
//   dequant    every decodable storage type into bf16: GB/s moved, share of HBM bandwidth
//   attention  Flux 1024² (4608 tokens) and Wan 480p (32760 tokens): cuDNN's fused kernel
//              against ditrun's own, TFLOP/s and share of the bf16 peak
//   copy       host to device from pinned and from pageable memory: GB/s, share of PCIe
//   step       one sampler step of full-size Flux-dev at 1024², weights made in memory:
//              all resident, half the blocks streamed (prefetch), half streamed with a
//              synchronous copy before each block; streaming compared with
//              max(compute, transfer) and with the synchronous copy
//
// Peaks come from the device itself (SM count x boost clock x tensor-core rate per SM for
// sm_90; HBM clock x bus width); PCIe is taken as Gen5 x16 (64 GB/s) on sm_90 and Gen4 x16
// (32 GB/s) before, which the table says.
#include <cuda_runtime_api.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/cudnn_attention.h"
#include "kernels/cuda/dequantize.h"
#include "models/arch/detect.h"
#include "models/arch/layout.h"
#include "models/pipeline/network.h"
#include "models/quant/conversion.h"
#include "models/quant/fp8_quantize.h"
#include "runtime/core/units.h"
#include "runtime/core/atomic_file.h"
#include "runtime/core/error.h"
#include "runtime/cuda/cuda_backend.h"
#include "runtime/exec/model_call.h"
#include "runtime/exec/weight_store.h"

namespace ditrun::bench {
namespace {

using runtime::Backend;
using Clock = std::chrono::steady_clock;

// ---- the device and its limits

struct Peaks {
  std::string device;
  double bf16_flops = NAN, fp8_flops = NAN, hbm_bytes = NAN, pcie_bytes = NAN;
  std::string pcie_assumption;
};

Peaks device_peaks(int device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) fail("cannot query cuda:{}", device);
  int clock_khz = 0, mem_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device);
  cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, device);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device);
  Peaks p;
  p.device = fmt::format("{} (sm_{}{}, {} SMs)", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  // Dense bf16 FLOP per SM per clock: Hopper 4096 (H100 SXM: 132 SMs x 1.83 GHz x 4096 =
  // 989 TFLOP/s), Ampere A100 2048; fp8 doubles it where it exists.
  const double per_sm = prop.major == 9 ? 4096 : prop.major == 8 && prop.minor == 0 ? 2048 : NAN;
  p.bf16_flops = per_sm * prop.multiProcessorCount * clock_khz * 1e3;
  p.fp8_flops = prop.major * 10 + prop.minor >= 89 ? 2 * p.bf16_flops : NAN;
  p.hbm_bytes = 2.0 * mem_khz * 1e3 * bus_bits / 8.0;
  p.pcie_bytes = prop.major >= 9 ? 64e9 : 32e9;
  p.pcie_assumption = prop.major >= 9 ? "PCIe Gen5 x16 (64 GB/s)" : "PCIe Gen4 x16 (32 GB/s)";
  return p;
}

// ---- results

struct Row {
  std::string section, name;
  double value = 0;
  std::string unit;
  double of_peak = NAN;      // value / physical limit
  std::string alternative;   // "x1.74 vs bf16", "" when there is none
  std::string note;
};

std::string percent(double r) { return std::isnan(r) ? "-" : fmt::format("{:.0f}%", 100 * r); }

void print_row(const Row& r) {
  fmt::print("{:<10} {:<44} {:>10.2f} {:<8} {:>6}  {:<22} {}\n", r.section, r.name, r.value, r.unit, percent(r.of_peak),
             r.alternative, r.note);
  std::fflush(stdout);
}

// ---- timing

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds per call of `fn` (which issues GPU work): one warm-up call (plans, scratch), then
// batches timed between synchronizations until `budget` seconds are spent; the median batch.
double seconds_per_call(Backend& be, const std::function<void()>& fn, double budget) {
  fn();
  be.synchronize(be.compute_stream());
  auto t0 = Clock::now();
  fn();
  be.synchronize(be.compute_stream());
  const double one = std::max(1e-6, std::chrono::duration<double>(Clock::now() - t0).count());
  const int per_batch = int(std::clamp(budget / 5 / one, 1.0, 200.0));
  std::vector<double> batches;
  const auto start = Clock::now();
  do {
    t0 = Clock::now();
    for (int i = 0; i < per_batch; ++i) fn();
    be.synchronize(be.compute_stream());
    batches.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / per_batch);
  } while (std::chrono::duration<double>(Clock::now() - start).count() < budget && batches.size() < 50);
  return median(batches);
}

// ---- weights made in memory

std::vector<float> normal_values(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// A weight whose stored bytes live in this object.
struct OwnedWeight {
  std::vector<uint8_t> bytes;
  Weight w;
};

// `kind`: bf16 | f16 | fp8 | fp8-scaled | fp8-block128 | fp8-block64 | any GGUF type. Values
// are quantized from a 16-row tile of normal numbers and the tile repeated (quantizing
// billions of values on the host would take minutes; timings do not depend on the values).
// Types ditrun cannot write (the IQ codebooks) get random block bytes.
std::unique_ptr<OwnedWeight> make_weight(const std::string& name, int64_t rows, int64_t cols, const std::string& kind,
                                         uint32_t seed = 1) {
  auto o = std::make_unique<OwnedWeight>();
  Weight& w = o->w;
  w.name = name;
  w.shape = {rows, cols};
  const int64_t tile = std::min<int64_t>(rows, 16);
  const std::vector<float> values = normal_values(size_t(tile * cols), seed, 0.02f);
  std::vector<uint8_t> tile_bytes;
  std::vector<float> tile_scales;
  if (kind.starts_with("fp8")) {
    const int64_t block = kind == "fp8-block128" ? 128 : kind == "fp8-block64" ? 64 : 0;
    quant::Fp8Quantized q = kind == "fp8" || kind == "fp8-scaled" ? quant::quantize_fp8_per_tensor(values, tile, cols)
                                                                  : quant::quantize_fp8_blockwise(values, tile, cols, block);
    w.storage = DType::F8_E4M3;
    tile_bytes = std::move(q.bytes);
    if (kind != "fp8") {
      w.encoding = block ? Encoding::BlockFp8 : Encoding::ScaledFp8;
      w.scale_layout = q.layout;
      w.scale_block = q.layout == ScaleLayout::PerBlock ? q.block : 0;
      tile_scales = std::move(q.scales);
    }
  } else {
    const auto type = dtype_from_user_name(kind);
    if (!type) fail("bench: unknown weight kind '{}'", kind);
    w.storage = *type;
    w.encoding = dtype_info(*type).kind == DTypeKind::Quantized ? Encoding::Gguf : Encoding::Plain;
    tile_bytes.resize(size_t(dtype_bytes(*type, tile * cols, name)));
    if (dtype_info(*type).from_f32) {
      quantize_from_f32(*type, values, tile_bytes);
    } else {
      std::mt19937 rng(seed);
      for (auto& b : tile_bytes) b = uint8_t(rng());
    }
  }
  o->bytes.resize(tile_bytes.size() / size_t(tile) * size_t(rows));
  for (int64_t r = 0; r < rows; r += tile)
    std::memcpy(o->bytes.data() + size_t(r) * (tile_bytes.size() / size_t(tile)), tile_bytes.data(),
                size_t(std::min(tile, rows - r)) * (tile_bytes.size() / size_t(tile)));
  if (w.scale_layout == ScaleLayout::PerTensor) {
    w.scales = tile_scales;
  } else if (!tile_scales.empty()) {
    const size_t per_row = tile_scales.size() / size_t(tile);
    for (int64_t r = 0; r < rows; ++r)
      w.scales.insert(w.scales.end(), tile_scales.begin() + long(size_t(r % tile) * per_row),
                      tile_scales.begin() + long(size_t(r % tile + 1) * per_row));
  }
  w.bytes = o->bytes;
  return o;
}

Tensor random_activation(Backend& be, const Shape& shape, uint32_t seed) {
  Tensor t = be.empty(shape);
  const std::vector<float> v = normal_values(size_t(shape_numel(shape)), seed, 1.0f);
  be.upload(v, t, be.compute_stream());
  return t;
}

cudaStream_t native(Backend& be) { return static_cast<cudaStream_t>(be.native_stream(be.compute_stream())); }

// ---- sections

struct Options {
  std::vector<std::string> only;
  double seconds = 0.3;
  std::string markdown, json;
  std::vector<std::string> step_weights{"bf16", "q8_0"};
  int step_repeats = 2;
  bool quick = false;  // smaller shapes: a smoke test of the bench itself
};

bool wanted(const Options& o, std::string_view section) {
  return o.only.empty() || std::find(o.only.begin(), o.only.end(), section) != o.only.end();
}

void gemm_section(Backend& be, const Peaks& peaks, const Options& o, std::vector<Row>& rows) {
  struct Shape3 {
    const char* name;
    int64_t tokens, in, out;
  };
  std::vector<Shape3> shapes = {{"flux qkv", 4608, 3072, 9216},       {"flux mlp.0", 4608, 3072, 12288},
                                {"flux mlp.2", 4608, 12288, 3072},    {"flux single linear1", 4608, 3072, 21504},
                                {"wan self-attn q", 32760, 5120, 5120}, {"wan ffn.0", 32760, 5120, 13824},
                                {"wan ffn.2", 32760, 13824, 5120}};
  if (o.quick) shapes = {{"quick", 512, 1024, 1024}};
  const std::vector<std::string> kinds = {"bf16", "fp8-scaled", "fp8-block128", "fp8-block64", "q8_0", "q4_K"};
  for (const Shape3& s : shapes) {
    const Tensor x = random_activation(be, {1, s.tokens, s.in}, 1);
    Tensor y = be.empty({1, s.tokens, s.out});
    const double flop = 2.0 * double(s.tokens) * double(s.in) * double(s.out);
    double bf16_rate = NAN;
    for (const std::string& kind : kinds) {
      const auto weight = make_weight("bench.weight", s.out, s.in, kind);
      const runtime::DeviceWeight dw = be.load_weight(weight->w, be.compute_stream());
      const double t = seconds_per_call(be, [&] { be.linear(x, dw, nullptr, y); }, o.seconds);
      const double rate = flop / t;
      if (kind == "bf16") bf16_rate = rate;
      const bool fp8_gemm = kind == "fp8-scaled" || kind == "fp8-block128";
      Row r{"gemm", fmt::format("{} {}x{}x{} {}", s.name, s.tokens, s.in, s.out, kind), rate / 1e12, "TFLOP/s",
            rate / (fp8_gemm ? peaks.fp8_flops : peaks.bf16_flops),
            kind == "bf16" ? "" : fmt::format("x{:.2f} vs bf16", rate / bf16_rate),
            fp8_gemm ? "fp8 tensor cores, x quantized on the fly" : kind == "bf16" ? "cuBLASLt bf16" : "decoded to bf16, then bf16 GEMM"};
      print_row(r);
      rows.push_back(std::move(r));
    }
  }
}

void dequant_section(Backend& be, const Peaks& peaks, const Options& o, std::vector<Row>& rows) {
  const int64_t n_rows = o.quick ? 256 : 12288, cols = 3072;
  const std::vector<std::string> kinds = {"q8_0",   "q6_K",   "q5_K",    "q4_K",  "q3_K",   "q2_K",   "q5_0",
                                          "q5_1",   "q4_0",   "q4_1",    "iq4_nl", "iq4_xs", "iq3_s",  "iq3_xxs",
                                          "iq2_s",  "iq2_xs", "iq2_xxs", "iq1_s", "iq1_m",  "tq1_0",  "tq2_0",
                                          "mxfp4",  "f16",    "fp8-scaled", "fp8-block64"};
  const runtime::Buffer out = be.allocate_device(uint64_t(n_rows * cols) * 2);
  for (const std::string& kind : kinds) {
    const auto type = kind.starts_with("fp8") ? std::optional<DType>(DType::F8_E4M3) : dtype_from_user_name(kind);
    if (!type || !kernels::cuda::can_dequantize(*type)) {
      Row r{"dequant", kind, 0, "GB/s", NAN, "", "no device decoder"};
      print_row(r);
      rows.push_back(r);
      continue;
    }
    const auto weight = make_weight("bench.weight", n_rows, cols, kind);
    const runtime::Buffer bytes = be.allocate_device(weight->bytes.size());
    be.copy_to_device(weight->bytes, bytes, 0, be.compute_stream());
    runtime::Buffer scales;
    kernels::cuda::WeightRef ref;
    ref.source = &weight->w;
    ref.bytes = bytes.data;
    if (!weight->w.scales.empty()) {
      scales = be.allocate_device(weight->w.scales.size() * 4);
      be.copy_to_device({reinterpret_cast<const uint8_t*>(weight->w.scales.data()), weight->w.scales.size() * 4}, scales,
                        0, be.compute_stream());
      ref.scales = reinterpret_cast<const float*>(scales.data);
    }
    be.synchronize(be.compute_stream());
    const double t = seconds_per_call(
        be, [&] { kernels::cuda::dequantize(ref, out.data, DType::BF16, native(be)); }, o.seconds);
    const double moved = double(weight->bytes.size() + weight->w.scales.size() * 4) + double(n_rows * cols) * 2;
    Row r{"dequant", fmt::format("{} -> bf16 [{}, {}]", kind, n_rows, cols), moved / t / 1e9, "GB/s",
          moved / t / peaks.hbm_bytes, "", fmt::format("{:.3f} ms", t * 1e3)};
    print_row(r);
    rows.push_back(std::move(r));
  }
}

void attention_section(Backend& be, const Peaks& peaks, const Options& o, std::vector<Row>& rows) {
  struct Case {
    const char* name;
    int64_t tokens, heads, dim;
    bool fused;  // q, k, v column slices of one qkv buffer (Flux) or separate (Wan)
  };
  std::vector<Case> cases = {{"flux 1024^2", 4608, 24, 128, true}, {"wan 480p 81f", 32760, 40, 128, false}};
  if (o.quick) cases = {{"quick", 1024, 8, 128, true}};
  kernels::cuda::CudnnAttention cudnn(256ull << 20);
  for (const Case& c : cases) {
    const int64_t width = c.heads * c.dim;
    Tensor qkv = c.fused ? random_activation(be, {1, c.tokens, 3 * width}, 7) : Tensor();
    const Tensor q = c.fused ? qkv.slice_cols(0, width) : random_activation(be, {1, c.tokens, width}, 8);
    const Tensor k = c.fused ? qkv.slice_cols(width, width) : random_activation(be, {1, c.tokens, width}, 9);
    const Tensor v = c.fused ? qkv.slice_cols(2 * width, width) : random_activation(be, {1, c.tokens, width}, 10);
    Tensor out = be.empty({1, c.tokens, width});
    const double flop = 4.0 * double(c.tokens) * double(c.tokens) * double(width);
    const double own = flop / seconds_per_call(be, [&] { kernels::cuda::flash_attention(q, k, v, out, c.heads, {}, native(be)); },
                                               o.seconds);
    double fused = NAN;
    std::string why;
    if (cudnn.supports(q, k, v, out, c.heads, {}, &why)) {
      const size_t ws = cudnn.workspace_bytes(q, k, v, out, c.heads, {});
      const runtime::Buffer workspace = be.allocate_device(std::max<size_t>(ws, 256));
      fused = flop / seconds_per_call(
                         be, [&] { cudnn.run(q, k, v, out, c.heads, {}, workspace.data, ws, native(be)); }, o.seconds);
    }
    const std::string shape = fmt::format("{} L={} H={} D={}", c.name, c.tokens, c.heads, c.dim);
    Row r1{"attention", shape + " cudnn", fused / 1e12, "TFLOP/s", fused / peaks.bf16_flops,
           std::isnan(fused) ? "" : fmt::format("x{:.2f} vs own", fused / own), std::isnan(fused) ? "unsupported: " + why : ""};
    Row r2{"attention", shape + " own flash", own / 1e12, "TFLOP/s", own / peaks.bf16_flops, "", "mma.sync bf16"};
    for (Row* r : {&r1, &r2}) {
      print_row(*r);
      rows.push_back(*r);
    }
  }
}

double copy_section(Backend& be, const Peaks& peaks, const Options& o, std::vector<Row>& rows) {
  const uint64_t bytes = o.quick ? (64ull << 20) : (1ull << 30);
  const runtime::Buffer device = be.allocate_device(bytes);
  const runtime::Buffer pinned = be.allocate_pinned(bytes);
  std::memset(pinned.data, 1, bytes);
  std::vector<uint8_t> pageable(bytes, 1);
  const runtime::Stream copies = be.create_stream();
  auto rate = [&](std::span<const uint8_t> src) {
    std::vector<double> t;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = Clock::now();
      be.copy_to_device(src, device, 0, copies);
      be.synchronize(copies);
      t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return double(bytes) / median(t);
  };
  const double pinned_rate = rate({pinned.data, bytes}), pageable_rate = rate(pageable);
  Row r1{"copy", fmt::format("host->device pinned {}", format_bytes(bytes)), pinned_rate / 1e9, "GB/s",
         pinned_rate / peaks.pcie_bytes, fmt::format("x{:.2f} vs pageable", pinned_rate / pageable_rate),
         "of " + peaks.pcie_assumption};
  Row r2{"copy", fmt::format("host->device pageable {}", format_bytes(bytes)), pageable_rate / 1e9, "GB/s",
         pageable_rate / peaks.pcie_bytes, "", ""};
  for (Row* r : {&r1, &r2}) {
    print_row(*r);
    rows.push_back(*r);
  }
  return pinned_rate;
}

// Full-size Flux-dev at 1024²: every weight of the release's layout made in memory in the
// target encoding, one step timed all resident, half streamed (every other block), and half
// streamed with synchronous copies.
void step_section(Backend& be, const Options& o, double h2d_rate, std::vector<Row>& rows) {
  arch::ModelConfig config = arch::preset("flux-dev", "bench");
  if (o.quick) {
    auto& p = std::get<arch::FluxParams>(config.params);
    p.depth = 2;
    p.depth_single_blocks = 4;
  }
  const auto network = models::make_network(config);
  const int64_t side = o.quick ? 32 : 64, img = side * side, txt = o.quick ? 64 : 512;
  runtime::HostTensors inputs;
  inputs["img"] = HostTensor({1, img, 64}, normal_values(size_t(img * 64), 1, 1.0f));
  HostTensor img_ids({1, img, 3});
  for (int64_t i = 0; i < img; ++i) {
    img_ids.data[size_t(3 * i + 1)] = float(i / side);
    img_ids.data[size_t(3 * i + 2)] = float(i % side);
  }
  inputs["img_ids"] = std::move(img_ids);
  inputs["txt"] = HostTensor({1, txt, 4096}, normal_values(size_t(txt * 4096), 2, 1.0f));
  inputs["txt_ids"] = HostTensor({1, txt, 3});
  inputs["y"] = HostTensor({1, 768}, normal_values(768, 3, 1.0f));
  inputs["timesteps"] = HostTensor({1}, {0.7f});
  inputs["guidance"] = HostTensor({1}, {3.5f});

  for (const std::string& target_name : o.step_weights) {
    const quant::ConversionTarget target = quant::ConversionTarget::parse(target_name);
    // The weights, made on all cores (the host side of a 24 GB model).
    const auto layout = arch::tensor_layout(config);
    std::vector<std::unique_ptr<OwnedWeight>> weights(layout.size());
    std::vector<std::thread> makers;
    const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    const auto made_start = Clock::now();
    for (unsigned t = 0; t < threads; ++t)
      makers.emplace_back([&, t] {
        for (size_t i = t; i < layout.size(); i += threads) {
          const auto& spec = layout[i];
          const std::string unit = arch::placement_unit(config, spec.name);
          const bool inside = unit != runtime::kPrologueUnit && unit != runtime::kEpilogueUnit;
          const auto conv = quant::plan_conversion(target, config.family, spec.name, spec.shape, DType::BF16, inside);
          const int64_t rows = spec.shape.size() <= 1 ? 1 : spec.shape[0];
          const int64_t cols = shape_numel(spec.shape) / std::max<int64_t>(rows, 1);
          std::string kind = std::string(dtype_name(conv.storage));
          if (conv.storage == DType::F8_E4M3) kind = conv.scale == quant::TensorConversion::Scale::None ? "fp8" : "fp8-scaled";
          weights[i] = make_weight(spec.name, rows, cols, kind, uint32_t(i + 1));
          weights[i]->w.shape = spec.shape;
        }
      });
    for (auto& m : makers) m.join();
    std::map<std::string, const Weight*, std::less<>> by_name;
    uint64_t total = 0;
    for (const auto& w : weights) {
      by_name[w->w.name] = &w->w;
      total += w->w.stored_bytes();
    }
    spdlog::info("flux-dev {} weights made in memory: {} in {:.1f} s", target_name, format_bytes(total),
                 std::chrono::duration<double>(Clock::now() - made_start).count());
    const runtime::WeightStore::FindSource find = [&](const std::string& n) -> const Weight* {
      auto it = by_name.find(n);
      return it == by_name.end() ? nullptr : it->second;
    };
    auto time_step = [&](runtime::WeightStore& store) {
      std::vector<double> t;
      runtime::run_model(be, *network, store, inputs);  // warm-up: plans, scratch
      for (int i = 0; i < o.step_repeats; ++i) {
        const auto t0 = Clock::now();
        runtime::run_model(be, *network, store, inputs);
        t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      }
      return median(t);
    };

    double resident_s = 0;
    {
      runtime::WeightStore store(be, *network, find);
      resident_s = time_step(store);
    }
    // Every other block streamed: a resident block's compute hides the next one's copy.
    partition::RankPlan rank;
    rank.device = "cuda:0";
    const auto units = runtime::model_units(*network);
    for (size_t i = 0; i < units.size(); ++i) {
      uint64_t bytes = 0;
      for (const auto& name : units[i].weights)
        if (const Weight* w = find(name)) bytes += w->stored_bytes();
      const bool streamed = i > 0 && i + 1 < units.size() && i % 2 == 0;
      rank.blocks.push_back({units[i].name, streamed ? partition::Home::streamed : partition::Home::resident, bytes});
      if (streamed) rank.slot_bytes = std::max(rank.slot_bytes, bytes);
    }
    rank.prefetch_depth = 2;
    rank.activation_bytes = uint64_t(network->activation_elements({img, txt}, 1)) * 2;
    double streamed_s = 0, sync_s = 0;
    uint64_t streamed_bytes = 0;
    for (const auto copies : {runtime::WeightStore::Copies::Overlapped, runtime::WeightStore::Copies::Synchronous}) {
      runtime::WeightStore store(be, *network, find, rank, 0, copies);
      streamed_bytes = store.streamed_bytes();
      (copies == runtime::WeightStore::Copies::Overlapped ? streamed_s : sync_s) = time_step(store);
    }
    const double transfer_s = double(streamed_bytes) / h2d_rate;
    const double bound = std::max(resident_s, transfer_s);
    const std::string tag = fmt::format("flux-dev 1024^2 {}", target_name);
    Row r1{"step", tag + " all resident", resident_s, "s/step", NAN, "",
           fmt::format("{} of weights", format_bytes(total))};
    Row r2{"step", tag + " half streamed", streamed_s, "s/step", NAN,
           fmt::format("x{:.2f} vs sync copy", sync_s / streamed_s),
           fmt::format("{:.3f} x max(compute {:.3f}, transfer {:.3f} s: {} at {:.1f} GB/s)", streamed_s / bound,
                       resident_s, transfer_s, format_bytes(streamed_bytes), h2d_rate / 1e9)};
    Row r3{"step", tag + " half streamed, sync copy", sync_s, "s/step", NAN, "", "copy before each streamed block"};
    for (Row* r : {&r1, &r2, &r3}) {
      print_row(*r);
      rows.push_back(*r);
    }
  }
}

// ---- output

std::string today() {
  const std::time_t now = std::time(nullptr);
  char text[16];
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(text, sizeof text, "%Y-%m-%d", &utc);
  return text;
}

void write_outputs(const Options& o, const Peaks& peaks, const std::vector<Row>& rows) {
  const std::string date = today();
  if (!o.markdown.empty()) {
    std::string md;
    for (const Row& r : rows)
      md += fmt::format("| {} | {} | {} | {} | {:.2f} {} | {} | {} | {} |\n", date, peaks.device, r.section, r.name,
                        r.value, r.unit, percent(r.of_peak), r.alternative, r.note);
    AtomicFile f(o.markdown);
    f.write(md.data(), md.size());
    f.commit();
  }
  if (!o.json.empty()) {
    nlohmann::json j = {{"date", date},
                        {"device", peaks.device},
                        {"peaks", {{"bf16_tflops", peaks.bf16_flops / 1e12},
                                   {"fp8_tflops", peaks.fp8_flops / 1e12},
                                   {"hbm_gb_per_s", peaks.hbm_bytes / 1e9},
                                   {"pcie_gb_per_s", peaks.pcie_bytes / 1e9}}},
                        {"rows", nlohmann::json::array()}};
    for (const Row& r : rows)
      j["rows"].push_back({{"section", r.section}, {"case", r.name}, {"value", r.value}, {"unit", r.unit},
                           {"of_peak", std::isnan(r.of_peak) ? nlohmann::json() : nlohmann::json(r.of_peak)},
                           {"alternative", r.alternative}, {"note", r.note}});
    const std::string text = j.dump(2);
    AtomicFile f(o.json);
    f.write(text.data(), text.size());
    f.commit();
  }
}

int run(const Options& o) {
  if (const auto why = runtime::cuda_unavailable_reason(0)) fail("{}", *why);
  const Peaks peaks = device_peaks(0);
  fmt::print("device {}: bf16 peak {:.0f} TFLOP/s, fp8 {:.0f}, HBM {:.0f} GB/s, {}\n", peaks.device,
             peaks.bf16_flops / 1e12, peaks.fp8_flops / 1e12, peaks.hbm_bytes / 1e9, peaks.pcie_assumption);
  runtime::CudaBackendOptions bo;
  bo.precision = runtime::Precision::BF16;
  auto backend = runtime::make_cuda_backend(bo);
  std::vector<Row> rows;
  double h2d = 50e9;
  const std::vector<std::pair<const char*, std::function<void()>>> sections = {
      {"gemm", [&] { gemm_section(*backend, peaks, o, rows); }},
      {"dequant", [&] { dequant_section(*backend, peaks, o, rows); }},
      {"attention", [&] { attention_section(*backend, peaks, o, rows); }},
      {"copy", [&] { h2d = copy_section(*backend, peaks, o, rows); }},
      {"step", [&] { step_section(*backend, o, h2d, rows); }},
  };
  int failures = 0;
  for (const auto& [name, section] : sections) {
    if (!wanted(o, name)) continue;
    const auto t0 = Clock::now();
    try {
      section();
    } catch (const std::exception& e) {
      ++failures;
      Row r{name, "FAILED", 0, "", NAN, "", e.what()};
      print_row(r);
      rows.push_back(r);
    }
    fmt::print("-- {} took {:.1f} s\n", name, std::chrono::duration<double>(Clock::now() - t0).count());
    write_outputs(o, peaks, rows);  // after every section: a timeout keeps what was measured
  }
  return failures ? 1 : 0;
}

}  // namespace
}  // namespace ditrun::bench

int main(int argc, char** argv) {
  using namespace ditrun;
  CLI::App app{"ditrun_bench_gpu: the CUDA backend against the GPU's limits and the simplest alternatives"};
  bench::Options o;
  std::string only;
  app.add_option("--only", only, "Sections, comma-separated: gemm,dequant,attention,copy,step (default: all)");
  app.add_option("--seconds", o.seconds, "Time spent on each measurement")->check(CLI::PositiveNumber);
  app.add_option("--markdown", o.markdown, "Write the rows as markdown table lines (date and device in each)");
  app.add_option("--json", o.json, "Write every row, the device and its peaks as JSON");
  std::string step_weights = "bf16,q8_0";
  app.add_option("--step-weights", step_weights, "Encodings of the Flux-dev step: bf16,q8_0,q4_K,fp8-scaled,...");
  app.add_option("--step-repeats", o.step_repeats, "Timed steps per configuration")->check(CLI::PositiveNumber);
  app.add_flag("--quick", o.quick, "Small shapes and a 6-block Flux: checks the bench runs, measures nothing useful");
  CLI11_PARSE(app, argc, argv);
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    size_t begin = 0;
    while (begin <= s.size()) {
      const size_t end = std::min(s.find(',', begin), s.size());
      if (end > begin) out.push_back(s.substr(begin, end - begin));
      begin = end + 1;
    }
    return out;
  };
  o.only = split(only);
  o.step_weights = split(step_weights);
  try {
    return bench::run(o);
  } catch (const std::exception& e) {
    fmt::print(stderr, "ditrun_bench_gpu: {}\n", e.what());
    return 2;
  }
}
