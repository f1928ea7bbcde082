#include "partition/hardware_profile.h"

#include <cmath>
#include <fstream>

#include "runtime/core/units.h"
#include "runtime/core/error.h"

namespace ditrun::partition {

std::string_view to_string(HardwareKind kind) { return kind == HardwareKind::gpu ? "gpu" : "cpu"; }

namespace {

constexpr double TFLOPS = 1e12;
constexpr double GBPS = 1e9;

Throughput rates(double bf16, double fp8, double gguf, double attention, double memory_gbps,
                 double elementwise_gbps, double h2d_gbps, double d2d_gbps) {
  Throughput t;
  t.gemm_flops = {{"bf16", bf16 * TFLOPS}, {"fp8", fp8 * TFLOPS}, {"gguf", gguf * TFLOPS}};
  t.attention_flops = attention * TFLOPS;
  t.memory_bytes_per_s = memory_gbps * GBPS;
  t.elementwise_bytes_per_s = elementwise_gbps * GBPS;
  t.host_to_device_bytes_per_s = h2d_gbps * GBPS;
  t.device_to_device_bytes_per_s = d2d_gbps * GBPS;
  return t;
}

// Spec-sheet numbers scaled to what well-tuned kernels reach; no number here was measured
// by ditrun. The conventions: GEMM at 70% of dense tensor peak (measured large bf16 GEMMs on
// H100 reach ~80%, DiT shapes and our kernels less), GGUF at 75% of the bf16 rate (dequantize
// then bf16 GEMM), attention at ~50% of bf16 peak, memory at 90% of spec, elementwise ops
// (norms, RoPE, activations: memory-bound) at 60% of that, link rates as noted.
std::vector<HardwareProfile> make_builtin_profiles() {
  std::vector<HardwareProfile> p;
  p.push_back({"h100-80gb", "NVIDIA H100 80GB HBM3 (SXM5)", HardwareKind::gpu, 81559 * MiB, "9.0",
               rates(690, 1380, 520, 500, 3000, 1800, 50, 360), 256 * GiB,
               "spec-sheet derived: bf16 dense 989 TFLOP/s and fp8 dense 1979 TFLOP/s at 70%, gguf = 75% of "
               "bf16, attention ~50% of bf16 peak, HBM3 3.35 TB/s at 90%, PCIe Gen5 x16 host->device 50 GB/s "
               "(measured 50-55 with pinned memory), NVLink4 450 GB/s per direction at 80%; memory as "
               "nvidia-smi reports it; host RAM as a DGX H100 (2 TB for 8 GPUs)"});
  p.push_back({"h200-141gb", "NVIDIA H200 141GB HBM3e (SXM5)", HardwareKind::gpu, 143771 * MiB, "9.0",
               rates(690, 1380, 520, 500, 4300, 2600, 50, 360), 256 * GiB,
               "spec-sheet derived: same tensor cores as H100 SXM (bf16 989, fp8 1979 TFLOP/s dense, at 70%), "
               "gguf = 75% of bf16, attention ~50% of bf16 peak, HBM3e 4.8 TB/s at 90%, PCIe Gen5 x16 50 GB/s, "
               "NVLink4 450 GB/s per direction at 80%; memory as nvidia-smi reports it; host RAM as a DGX H200"});
  p.push_back({"rtx4090-24gb", "NVIDIA GeForce RTX 4090", HardwareKind::gpu, 24564 * MiB, "8.9",
               rates(115, 230, 85, 80, 900, 540, 25, 12), 64 * GiB,
               "spec-sheet derived: bf16 (fp32 accumulate) 165 TFLOP/s and fp8 330 TFLOP/s dense at 70%, gguf = "
               "75% of bf16, attention ~50% of bf16 peak, GDDR6X 1008 GB/s at 90%, PCIe Gen4 x16 ~25 GB/s "
               "effective; no P2P on GeForce 40, so GPU<->GPU goes through host memory (estimate 12 GB/s); "
               "memory as nvidia-smi reports it; host RAM: a 64 GiB workstation share per GPU (estimate)"});
  p.push_back({"rtx3090-24gb", "NVIDIA GeForce RTX 3090", HardwareKind::gpu, 24576 * MiB, "8.6",
               rates(50, 38, 38, 35, 840, 500, 25, 12), 64 * GiB,
               "spec-sheet derived: bf16 (fp32 accumulate) 71 TFLOP/s dense at 70%; no fp8 tensor cores, so fp8 "
               "and gguf weights are converted for a bf16 GEMM (75% of bf16); attention ~50% of bf16 peak, "
               "GDDR6X 936 GB/s at 90%, PCIe Gen4 x16 ~25 GB/s effective, GPU<->GPU through host memory "
               "(estimate 12 GB/s; with an NVLink bridge ~56 GB/s per direction: write a profile); memory as "
               "nvidia-smi reports it; host RAM: a 64 GiB workstation share per GPU (estimate)"});
  p.push_back({"generic-24gb", "unknown 24 GB GPU", HardwareKind::gpu, 24 * GiB, "",
               rates(60, 60, 45, 40, 700, 420, 20, 10), 32 * GiB,
               "deliberately conservative placeholder for an unknown 24 GB card (below an RTX 3090 / A5000): "
               "not a real device; measure yours and write a profile for real planning"});
  p.push_back({"cpu", "host CPU", HardwareKind::cpu, 64 * GiB, "", rates(0.8, 0.6, 0.6, 0.4, 60, 20, 10, 10), 0,
               "estimate for a 16-core AVX2/AVX-512 server running ditrun's CPU kernels (dequantize, then "
               "OpenBLAS sgemm) at about half of its f32 FMA peak, DDR5 ~60 GB/s, elementwise ops ~20 GB/s of "
               "activations; host->device and "
               "device->device are one thread's memcpy (~10 GB/s: the CPU backend's copy stream); memory = "
               "default host RAM when no GPU is given; measure with `ditrun bench --calibrate`"});
  return p;
}

std::string lower(std::string_view s) { return normalize_token(s); }

}  // namespace

const std::vector<HardwareProfile>& builtin_profiles() {
  static const std::vector<HardwareProfile> profiles = make_builtin_profiles();
  return profiles;
}

const HardwareProfile* find_builtin_profile(std::string_view id_or_alias) {
  const std::string key = lower(id_or_alias);
  for (const auto& p : builtin_profiles()) {
    const std::string_view alias = std::string_view(p.id).substr(0, p.id.find('-'));
    if (key == p.id || key == alias) return &p;
  }
  return nullptr;
}

HardwareProfile profile_for_gpu(std::string_view cuda_name, uint64_t total_bytes) {
  const std::string name = lower(cuda_name);
  // Substrings as CUDA spells them: "NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090".
  static constexpr std::pair<std::string_view, std::string_view> known[] = {
      {"h100", "h100-80gb"}, {"h200", "h200-141gb"}, {"rtx 4090", "rtx4090-24gb"}, {"rtx 3090", "rtx3090-24gb"}};
  HardwareProfile profile = *find_builtin_profile("generic-24gb");
  for (const auto& [needle, id] : known)
    if (name.find(needle) != std::string::npos) profile = *find_builtin_profile(id);
  if (profile.id == "generic-24gb") profile.model = std::string(cuda_name);
  profile.memory_bytes = total_bytes;
  return profile;
}

nlohmann::json profile_to_json(const HardwareProfile& p) {
  nlohmann::json gemm = nlohmann::json::object();
  for (const auto& [cls, flops] : p.throughput.gemm_flops) gemm[cls] = flops / TFLOPS;
  return {
      {"schema", "ditrun.hardware/1"},
      {"id", p.id},
      {"model", p.model},
      {"kind", to_string(p.kind)},
      {"memory", format_bytes_exact(p.memory_bytes)},
      {"compute_capability", p.compute_capability},
      {"gemm_tflops", gemm},
      {"attention_tflops", p.throughput.attention_flops / TFLOPS},
      {"memory_gb_per_s", p.throughput.memory_bytes_per_s / GBPS},
      {"elementwise_gb_per_s", p.throughput.elementwise_bytes_per_s / GBPS},
      {"host_to_device_gb_per_s", p.throughput.host_to_device_bytes_per_s / GBPS},
      {"device_to_device_gb_per_s", p.throughput.device_to_device_bytes_per_s / GBPS},
      {"host_ram_per_device", format_bytes_exact(p.host_ram_per_device)},
      {"source", p.source},
  };
}

namespace {

struct ProfileReader {
  const nlohmann::json& json;
  std::string_view origin;

  [[noreturn]] void bad(std::string_view field, std::string_view what) const {
    fail("hardware profile {}: field '{}': {}", origin, field, what);
  }
  const nlohmann::json& at(std::string_view field) const {
    auto it = json.find(field);
    if (it == json.end()) bad(field, "missing");
    return *it;
  }
  std::string text(std::string_view field) const {
    const auto& v = at(field);
    if (!v.is_string()) bad(field, "must be a string");
    return v.get<std::string>();
  }
  uint64_t size(std::string_view field) const {
    const auto& v = at(field);
    if (v.is_number_integer() && (v.is_number_unsigned() || v.get<int64_t>() >= 0)) return v.get<uint64_t>();
    if (!v.is_string()) bad(field, "must be a size such as \"80gib\" or a byte count");
    auto bytes = try_parse_bytes(v.get<std::string>());
    if (!bytes) bad(field, fmt::format("'{}' is not a size (use 80gib, 24576mib or bytes)", v.get<std::string>()));
    return *bytes;
  }
  // A rate must be a finite number; zero is allowed only where `zero_ok` (e.g. a CPU's links).
  double rate(const nlohmann::json& v, std::string_view field, double scale, bool zero_ok) const {
    if (!v.is_number()) bad(field, "must be a number");
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < 0 || (!zero_ok && x == 0)) bad(field, fmt::format("{} is not a positive rate", x));
    return x * scale;
  }
};

}  // namespace

HardwareProfile profile_from_json(const nlohmann::json& json, std::string_view origin) {
  if (!json.is_object()) fail("hardware profile {}: not a JSON object", origin);
  const ProfileReader r{json, origin};
  if (auto it = json.find("schema"); it != json.end() && *it != "ditrun.hardware/1")
    r.bad("schema", fmt::format("{} is not \"ditrun.hardware/1\"", it->dump()));
  HardwareProfile p;
  p.id = r.text("id");
  if (p.id.empty()) r.bad("id", "empty");
  p.model = r.text("model");
  const std::string kind = r.text("kind");
  if (kind == "gpu") p.kind = HardwareKind::gpu;
  else if (kind == "cpu") p.kind = HardwareKind::cpu;
  else r.bad("kind", fmt::format("'{}' is not gpu or cpu", kind));
  p.memory_bytes = r.size("memory");
  if (p.memory_bytes == 0) r.bad("memory", "zero");
  p.compute_capability = json.contains("compute_capability") ? r.text("compute_capability") : "";
  const auto& gemm = r.at("gemm_tflops");
  if (!gemm.is_object() || gemm.empty()) r.bad("gemm_tflops", "must be an object of weight class -> TFLOP/s");
  for (const auto& [cls, v] : gemm.items())
    p.throughput.gemm_flops[cls] = r.rate(v, "gemm_tflops." + cls, TFLOPS, false);
  // A GPU must have working links (streaming and pipelining divide by them); a CPU needs none.
  const bool gpu = p.kind == HardwareKind::gpu;
  p.throughput.attention_flops = r.rate(r.at("attention_tflops"), "attention_tflops", TFLOPS, false);
  p.throughput.memory_bytes_per_s = r.rate(r.at("memory_gb_per_s"), "memory_gb_per_s", GBPS, false);
  // Profiles written before the elementwise term have none: 0 prices those ops at the memory rate.
  if (json.contains("elementwise_gb_per_s"))
    p.throughput.elementwise_bytes_per_s = r.rate(r.at("elementwise_gb_per_s"), "elementwise_gb_per_s", GBPS, true);
  p.throughput.host_to_device_bytes_per_s =
      r.rate(r.at("host_to_device_gb_per_s"), "host_to_device_gb_per_s", GBPS, !gpu);
  p.throughput.device_to_device_bytes_per_s =
      r.rate(r.at("device_to_device_gb_per_s"), "device_to_device_gb_per_s", GBPS, !gpu);
  p.host_ram_per_device = json.contains("host_ram_per_device") ? r.size("host_ram_per_device") : 0;
  p.source = json.contains("source") ? r.text("source") : "";
  return p;
}

HardwareProfile load_profile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) fail("hardware profile {}: cannot open", path.string());
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("hardware profile {}: not valid JSON ({})", path.string(), e.what());
  }
  return profile_from_json(json, path.string());
}

}  // namespace ditrun::partition
