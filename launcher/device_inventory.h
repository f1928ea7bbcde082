// The devices a plan may use (partition::DeviceInventory): this machine's CUDA GPUs, when
// the build has CUDA, with the rates of their built-in profile, and its host RAM from
// /proc/meminfo; or the hardware a --devices override describes, so anyone can plan for
// machines they do not have.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "partition/device_spec.h"

namespace ditrun::launcher {

struct HostMemory {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;  // what new allocations can take without swapping
};

// MemTotal and MemAvailable ("MemTotal:  131072 kB"); fails naming `source` when either is
// missing or malformed.
HostMemory parse_meminfo(std::string_view text, std::string_view source);
HostMemory read_host_memory();  // /proc/meminfo

// This machine: GPUs as CUDA reports them (free memory now), host RAM total and available.
partition::DeviceInventory local_inventory();

// `override_spec` (partition::parse_device_override syntax) when not empty, else this machine.
partition::DeviceInventory device_inventory(const std::string& override_spec);

}  // namespace ditrun::launcher
