// What the CUDA runtime reports about the GPUs this process can see. Safe to call on a
// machine without a GPU or driver: it returns an empty list and the reason.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ditrun::cuda {

struct GpuInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  uint64_t total_bytes = 0, free_bytes = 0;
};

struct GpuInventory {
  std::vector<GpuInfo> gpus;
  std::string unavailable_reason;  // set when gpus is empty because CUDA could not start
  int runtime_version = 0;
};

GpuInventory query_gpus();

}  // namespace ditrun::cuda
