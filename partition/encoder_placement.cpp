#include "partition/encoder_placement.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "runtime/core/error.h"
#include "runtime/core/units.h"

namespace ditrun::partition {

uint64_t EncoderCost::weight_bytes() const {
  uint64_t bytes = 0;
  for (const BlockCost& l : layers) bytes += l.weight_bytes;
  return bytes;
}

uint64_t EncoderCost::largest_layer_bytes() const {
  uint64_t bytes = 0;
  for (const BlockCost& l : layers) bytes = std::max(bytes, l.weight_bytes);
  return bytes;
}

std::string_view to_string(EncoderWhere where) {
  switch (where) {
    case EncoderWhere::resident: return "resident";
    case EncoderWhere::streamed: return "streamed";
    case EncoderWhere::cpu: return "cpu";
  }
  return "?";
}

std::vector<EncoderPlacement> place_encoders(const std::vector<EncoderCost>& encoders, const Plan& plan,
                                             const DeviceInventory& inventory, std::string_view force,
                                             uint64_t reserved_bytes) {
  if (force != "" && force != "cpu" && force != "gpu") fail("encoder placement '{}': expected cpu, gpu or auto", force);
  const DeviceSpec* gpu = nullptr;
  uint64_t free = 0;
  if (!plan.ranks.empty()) {
    const RankPlan& rank0 = plan.ranks.front();
    const DeviceSpec* device = inventory.find(rank0.device);
    if (device && device->kind == HardwareKind::gpu) {
      gpu = device;
      free = reserved_bytes;
    }
  }
  const DeviceSpec& host = inventory.host();
  constexpr double kNever = std::numeric_limits<double>::infinity();
  std::vector<EncoderPlacement> out;
  for (const EncoderCost& e : encoders) {
    const auto compute_on = [&](const DeviceSpec& d) {
      double s = 0;
      for (const BlockCost& l : e.layers) s += compute_seconds(l, d.throughput, d.name);
      return s;
    };
    const double cpu = compute_on(host);
    double resident = kNever, streamed = kNever;
    const uint64_t resident_bytes = e.weight_bytes() + e.activation_bytes;
    const uint64_t streamed_bytes = 2 * e.largest_layer_bytes() + e.activation_bytes;
    std::string gpu_note;
    if (gpu) {
      const double on_gpu = compute_on(*gpu);
      const double copy = gpu->throughput.host_to_device_bytes_per_s;
      if (resident_bytes <= free) resident = on_gpu;
      if (streamed_bytes <= free && copy > 0) streamed = on_gpu + double(e.weight_bytes()) / copy;
      gpu_note = fmt::format("{} has {} kept for it beside the DiT; resident needs {}, streamed {}", gpu->name,
                             format_bytes(free), format_bytes(resident_bytes), format_bytes(streamed_bytes));
    }
    EncoderPlacement p;
    p.encoder = e.name;
    if (force == "gpu" && resident == kNever && streamed == kNever)
      fail("{}: does not fit on rank 0's GPU ({})", e.name, gpu ? gpu_note : "the plan's rank 0 is not a GPU");
    const bool use_gpu = force == "gpu" || (force != "cpu" && std::min(resident, streamed) < cpu);
    if (use_gpu && resident <= streamed) {
      p.where = EncoderWhere::resident;
      p.device_bytes = resident_bytes;
      p.seconds_per_job = resident;
    } else if (use_gpu) {
      p.where = EncoderWhere::streamed;
      p.device_bytes = streamed_bytes;
      p.seconds_per_job = streamed;
    } else {
      p.where = EncoderWhere::cpu;
      p.seconds_per_job = cpu;
    }
    p.device = p.where == EncoderWhere::cpu ? host.name : gpu->name;
    free -= std::min(free, p.device_bytes);
    const auto time = [&](double s) { return s == kNever ? std::string("does not fit") : fmt::format("{:.3g} s", s); };
    p.why = gpu ? fmt::format("per job: resident {}, streamed {}, cpu {} ({})", time(resident), time(streamed), time(cpu),
                              gpu_note)
                : fmt::format("per job: cpu {} (rank 0 has no GPU)", time(cpu));
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace ditrun::partition
