// The devices a plan may use: GPUs by name ("cuda:0", ...) and the host ("cpu"), with their
// memory and rates. Built from a CUDA query (the launcher does that) or from a --devices
// override, which lets anyone plan for hardware they do not have.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "partition/hardware_profile.h"

namespace ditrun::partition {

struct DeviceSpec {
  std::string name;  // "cuda:0", "cuda:1", ... or "cpu"
  HardwareKind kind = HardwareKind::gpu;
  std::string model;  // "NVIDIA H100 80GB HBM3 (SXM5)"
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;  // what an allocation may take now (after the CUDA context, other processes)
  std::string compute_capability;
  Throughput throughput;
};

// A device named `name` with the profile's memory (all free) and rates.
DeviceSpec device_from_profile(const HardwareProfile& profile, std::string name);

struct DeviceInventory {
  std::vector<DeviceSpec> devices;  // GPUs in index order, then exactly one "cpu" (the host RAM)

  const DeviceSpec* find(std::string_view name) const;  // nullptr if absent
  const DeviceSpec& host() const;                       // the "cpu" entry
  std::vector<const DeviceSpec*> gpus() const;
  std::string names() const;  // "cuda:0, cuda:1, cpu" for messages
};

// GPUs plus a host of host_ram_bytes (free_bytes = host_free_bytes) with the cpu profile's
// rates. Checks names are unique, GPUs are "cuda:N", and free <= total.
DeviceInventory make_inventory(std::vector<DeviceSpec> gpus, uint64_t host_ram_bytes, uint64_t host_free_bytes);

// --devices: comma-separated items, each one of
//   [N x] PROFILE   a built-in profile by id or alias: "4x h100-80gb", "h100", "rtx4090"
//   [N x] SIZE      a generic GPU with that much memory: "2x 24gb", "1x 48gib"
//   [N x] FILE.json a profile file (load_profile), e.g. one `ditrun bench --calibrate` wrote:
//                   kind gpu gives N such GPUs; kind cpu (no count, at most one) gives the
//                   host its model and rates, and its memory unless host= is given
//   host=SIZE       host RAM (default: the sum of the GPUs' host_ram_per_device, or the cpu
//                   profile's memory when there are no GPUs)
//   cpu             no GPU at all (only with host=)
// GPUs are numbered cuda:0.. in the order written; everything is free. Examples:
// "4x h100-80gb", "2x 24gb", "h100-80gb,rtx4090", "2x rtx3090, host=128gb",
// "2x rtx4090, cpu-calibrated.json", "cpu-calibrated.json" (the host alone).
// Errors point at the item: "devices '2x foo': item 1 '2x foo': unknown GPU 'foo' (...)".
DeviceInventory parse_device_override(std::string_view text);

}  // namespace ditrun::partition
