// What one kind of device can do, in the numbers the cost model needs, and the built-in
// profiles for the GPUs our users run.
//
// Profile JSON (configs/hardware/<id>.json mirror the built-in table; `ditrun` may load others):
//   {
//     "schema": "ditrun.hardware/1",
//     "id": "h100-80gb",                      // what --devices names it by
//     "model": "NVIDIA H100 80GB HBM3 (SXM5)",
//     "kind": "gpu",                          // "gpu" or "cpu"
//     "memory": "81559mib",                   // device memory (host RAM for kind cpu), binary units
//     "compute_capability": "9.0",            // "" when unknown / not a GPU
//     "gemm_tflops": {"bf16": 690, "fp8": 1380, "gguf": 520},  // per weight class, achievable
//     "attention_tflops": 500,
//     "memory_gb_per_s": 3000,                // HBM or DRAM, achievable
//     "elementwise_gb_per_s": 2000,           // norms, RoPE, activations, residuals (optional)
//     "host_to_device_gb_per_s": 50,          // pinned host -> this device, achievable
//     "device_to_device_gb_per_s": 360,       // this device <-> a peer GPU
//     "host_ram_per_device": "256gib",        // host RAM a machine has per such GPU (defaults)
//     "source": "how the numbers were obtained"
//   }
// Rates in JSON are decimal (1 TFLOP/s = 1e12 FLOP/s, 1 GB/s = 1e9 bytes/s); in C++ they are
// plain FLOP/s and bytes/s. Weight classes: "bf16" (bf16/f16 weights, bf16 GEMM), "fp8" (fp8
// weights, fp8 tensor cores where the card has them), "gguf" (GGUF blocks dequantized for a
// bf16 GEMM); a class missing from a profile means blocks of that class cannot run there.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ditrun::partition {

enum class HardwareKind { gpu, cpu };
std::string_view to_string(HardwareKind kind);

// Per-second rates of one device; all achievable numbers, not peaks.
struct Throughput {
  std::map<std::string, double, std::less<>> gemm_flops;  // weight class -> FLOP/s
  double attention_flops = 0;                             // FLOP/s of attention (no weights)
  double memory_bytes_per_s = 0;                          // HBM / DRAM
  // Activation bytes per second through norms, modulation, RoPE, activations and residuals
  // (read + written); 0: take memory_bytes_per_s (those ops are memory-bound on a GPU).
  double elementwise_bytes_per_s = 0;
  double host_to_device_bytes_per_s = 0;                  // pinned host memory -> device
  double device_to_device_bytes_per_s = 0;                // device <-> peer device
  bool operator==(const Throughput&) const = default;
};

struct HardwareProfile {
  std::string id;     // "h100-80gb"
  std::string model;  // "NVIDIA H100 80GB HBM3 (SXM5)"
  HardwareKind kind = HardwareKind::gpu;
  uint64_t memory_bytes = 0;
  std::string compute_capability;
  Throughput throughput;
  uint64_t host_ram_per_device = 0;
  std::string source;
  bool operator==(const HardwareProfile&) const = default;
};

// h100-80gb, h200-141gb, rtx4090-24gb, rtx3090-24gb, generic-24gb, cpu (in that order).
const std::vector<HardwareProfile>& builtin_profiles();

// By id ("rtx4090-24gb") or by the id's model part ("rtx4090", "h100"); case-insensitive.
// nullptr when nothing matches.
const HardwareProfile* find_builtin_profile(std::string_view id_or_alias);

// The built-in profile for a GPU name as CUDA reports it ("NVIDIA H100 80GB HBM3"), with
// memory set to total_bytes; an unknown GPU gets the generic profile's rates.
HardwareProfile profile_for_gpu(std::string_view cuda_name, uint64_t total_bytes);

nlohmann::json profile_to_json(const HardwareProfile& profile);
// Validates every field; errors read "hardware profile <origin>: field 'x': what is wrong".
HardwareProfile profile_from_json(const nlohmann::json& json, std::string_view origin);
HardwareProfile load_profile(const std::filesystem::path& path);

}  // namespace ditrun::partition
