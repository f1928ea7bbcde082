// DisTorch-style allocation strings: how much of each device a plan may use.
//
//   bytes      cuda:0,12gb;cuda:1,12gb;cpu,*    sizes (binary units, see units.h)
//   rest       cpu,*                            all of the device's usable memory
//   fractions  cuda:0,0.5;cpu,0.9               of the device's total memory, in [0, 1]
//   ratios     cuda:0,40%;cuda:1,40%;cpu,20%    shares of the model's weight bytes
//
// Bytes, fractions and '*' mix freely (they all say "this much memory"). Ratios say "this share
// of the model", as in DisTorch, so they cannot mix with the others; they are normalized
// (8%;8%;4% = 40/40/20, as DisTorch does) but may not add up to more than 100%. A GPU's budget
// in ratio mode is its share of the weights plus the per-GPU overhead the caller names
// (activations, workspace), so "40%" still means 40% of the model. Devices not named get no
// budget (the plan does not use them); the host ("cpu") budget is what may be pinned for
// streamed blocks. An empty string means "every GPU *; cpu,*".
//
// Usable memory is free memory minus --reserve-vram on each GPU (minus the host reserve on
// cpu); asking for more than that is an error, not a silent cap.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "partition/device_spec.h"

namespace ditrun::partition {

struct AllocationEntry {
  enum class Kind { bytes, rest, fraction, ratio };
  std::string device;  // "cuda:0", "cpu" (lower-cased)
  Kind kind = Kind::bytes;
  uint64_t bytes = 0;  // Kind::bytes
  double value = 0;    // Kind::fraction in [0, 1]; Kind::ratio in percent (0, 100]
  int index = 0;       // 1-based token number, for messages
  std::string token;   // the token as written
};

struct AllocationSpec {
  std::string text;
  std::vector<AllocationEntry> entries;
  bool uses_ratios() const;
};

// Syntax only: tokens "device,value" separated by ';' (a trailing ';' is fine). Every error
// names the token: "allocation 'cuda:0,12gb;cuda:1,x': token 2 'cuda:1,x': 'x' is not a size
// (use 12gb, 40% or 0.5)". Device names must look like cuda:N or cpu; that they exist is
// checked by resolve_budgets.
AllocationSpec parse_allocation(std::string_view text);

struct BudgetOptions {
  uint64_t reserve_vram_bytes = 0;  // --reserve-vram, kept free on every GPU
  uint64_t reserve_host_bytes = 0;  // kept free in host RAM (the OS, the loader)
  uint64_t model_bytes = 0;         // weight bytes of the model: needed for ratios
  uint64_t gpu_overhead_bytes = 0;  // added to a GPU's ratio share (activations, workspace)
};

struct DeviceBudget {
  std::string device;
  uint64_t bytes = 0;
};

struct Budgets {
  std::vector<DeviceBudget> gpus;  // GPUs named by the spec, in inventory order; 0 = unused
  uint64_t host_bytes = 0;         // pinned host RAM the plan may use
  std::string describe() const;    // "cuda:0 12 GiB, cuda:1 12 GiB, cpu 100 GiB"
};

// Per-device budgets in bytes. Errors name the token and the device: unknown devices, a
// device named twice (parse_allocation), a budget above usable memory, ratios without
// model_bytes.
Budgets resolve_budgets(const AllocationSpec& spec, const DeviceInventory& inventory,
                        const BudgetOptions& options = {});

}  // namespace ditrun::partition
