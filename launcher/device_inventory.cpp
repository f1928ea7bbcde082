#include "launcher/device_inventory.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

#include "runtime/core/error.h"
#ifdef DITRUN_HAVE_CUDA
#include "runtime/cuda/device_query.h"
#endif

namespace ditrun::launcher {
namespace {

// The value of "Key:   123 kB" in bytes, or nullopt when the line is not that key.
std::optional<uint64_t> meminfo_value(std::string_view line, std::string_view key, std::string_view source) {
  if (!line.starts_with(key) || line.size() <= key.size() || line[key.size()] != ':') return std::nullopt;
  std::string_view rest = line.substr(key.size() + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  uint64_t kib = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), kib);
  const std::string_view unit = rest.substr(size_t(end - rest.data()));
  if (ec != std::errc() || (unit != " kB" && unit != " kb") || kib > (UINT64_MAX >> 10))
    fail("{}: cannot read '{}' (expected '{}: <number> kB')", source, line, key);
  return kib << 10;
}

}  // namespace

HostMemory parse_meminfo(std::string_view text, std::string_view source) {
  std::optional<uint64_t> total, available;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(begin, end - begin);
    if (auto v = meminfo_value(line, "MemTotal", source)) total = v;
    if (auto v = meminfo_value(line, "MemAvailable", source)) available = v;
    begin = end + 1;
  }
  if (!total) fail("{}: no MemTotal line", source);
  if (!available) fail("{}: no MemAvailable line (Linux 3.14 or later reports it)", source);
  return {*total, std::min(*available, *total)};
}

HostMemory read_host_memory() {
  const char* path = "/proc/meminfo";
  std::ifstream in(path);
  if (!in) fail("{}: cannot read host memory sizes (use --devices to describe the machine)", path);
  std::stringstream text;
  text << in.rdbuf();
  return parse_meminfo(text.str(), path);
}

partition::DeviceInventory local_inventory() {
  std::vector<partition::DeviceSpec> gpus;
#ifdef DITRUN_HAVE_CUDA
  for (const cuda::GpuInfo& g : cuda::query_gpus().gpus) {
    partition::DeviceSpec d =
        partition::device_from_profile(partition::profile_for_gpu(g.name, g.total_bytes), fmt::format("cuda:{}", g.index));
    d.model = g.name;
    d.free_bytes = std::min(g.free_bytes, g.total_bytes);
    d.compute_capability = fmt::format("{}.{}", g.cc_major, g.cc_minor);
    gpus.push_back(std::move(d));
  }
#endif
  const HostMemory host = read_host_memory();
  return partition::make_inventory(std::move(gpus), host.total_bytes, host.available_bytes);
}

partition::DeviceInventory device_inventory(const std::string& override_spec) {
  if (!override_spec.empty()) return partition::parse_device_override(override_spec);
  return local_inventory();
}

}  // namespace ditrun::launcher
