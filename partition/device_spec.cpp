#include "partition/device_spec.h"

#include <charconv>
#include <optional>
#include <set>

#include "runtime/core/units.h"
#include "runtime/core/error.h"

namespace ditrun::partition {

DeviceSpec device_from_profile(const HardwareProfile& profile, std::string name) {
  return DeviceSpec{std::move(name), profile.kind,         profile.model,     profile.memory_bytes,
                    profile.memory_bytes, profile.compute_capability, profile.throughput};
}

const DeviceSpec* DeviceInventory::find(std::string_view name) const {
  for (const auto& d : devices)
    if (d.name == name) return &d;
  return nullptr;
}

const DeviceSpec& DeviceInventory::host() const {
  if (const DeviceSpec* cpu = find("cpu")) return *cpu;
  fail("device inventory has no 'cpu' entry for host RAM (have {})", names());
}

std::vector<const DeviceSpec*> DeviceInventory::gpus() const {
  std::vector<const DeviceSpec*> out;
  for (const auto& d : devices)
    if (d.kind == HardwareKind::gpu) out.push_back(&d);
  return out;
}

std::string DeviceInventory::names() const {
  std::string out;
  for (const auto& d : devices) out += (out.empty() ? "" : ", ") + d.name;
  return out;
}

DeviceInventory make_inventory(std::vector<DeviceSpec> gpus, uint64_t host_ram_bytes, uint64_t host_free_bytes) {
  DeviceInventory inv;
  std::set<std::string> seen;
  for (auto& g : gpus) {
    if (!g.name.starts_with("cuda:") || g.name.size() == 5 ||
        g.name.find_first_not_of("0123456789", 5) != std::string::npos)
      fail("device '{}': a GPU is named cuda:N", g.name);
    if (!seen.insert(g.name).second) fail("device '{}' is listed twice", g.name);
    if (g.kind != HardwareKind::gpu) fail("device '{}': listed as a GPU but its kind is {}", g.name, to_string(g.kind));
    if (g.free_bytes > g.total_bytes)
      fail("device '{}': free memory {} exceeds total {}", g.name, format_bytes(g.free_bytes), format_bytes(g.total_bytes));
    inv.devices.push_back(std::move(g));
  }
  if (host_free_bytes > host_ram_bytes)
    fail("device 'cpu': free host RAM {} exceeds total {}", format_bytes(host_free_bytes), format_bytes(host_ram_bytes));
  DeviceSpec host = device_from_profile(*find_builtin_profile("cpu"), "cpu");
  host.total_bytes = host_ram_bytes;
  host.free_bytes = host_free_bytes;
  inv.devices.push_back(std::move(host));
  return inv;
}

namespace {

std::string trim(std::string_view text) {
  const size_t begin = text.find_first_not_of(" \t\n\r\f\v");
  if (begin == std::string_view::npos) return "";
  return std::string(text.substr(begin, text.find_last_not_of(" \t\n\r\f\v") + 1 - begin));
}

std::string known_gpu_list() {
  std::string out;
  for (const auto& p : builtin_profiles())
    if (p.kind == HardwareKind::gpu) out += p.id + ", ";
  return out + "or a size like 24gb";
}

}  // namespace

DeviceInventory parse_device_override(std::string_view text) {
  std::vector<DeviceSpec> gpus;
  uint64_t host_ram = 0, host_ram_default = 0;
  bool host_given = false, cpu_only = false;
  std::optional<HardwareProfile> host_profile;  // a kind-cpu profile file: the host's rates
  size_t begin = 0;
  for (int item_no = 1;; ++item_no) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string_view raw = text.substr(begin, end - begin);
    const std::string item = normalize_token(raw);
    const std::string where = fmt::format("devices '{}': item {} '{}'", text, item_no, item);
    if (item.empty()) fail("{}: empty (write e.g. 4x h100-80gb or 2x 24gb)", where);
    if (item.starts_with("host=")) {
      if (host_given) fail("{}: host RAM given twice", where);
      auto bytes = try_parse_bytes(item.substr(5));
      if (!bytes || *bytes == 0) fail("{}: '{}' is not a size (use host=128gb)", where, item.substr(5));
      host_ram = *bytes;
      host_given = true;
    } else if (item == "cpu") {
      cpu_only = true;
    } else {
      // Optional "N x" prefix: digits, then 'x', blanks allowed around it.
      int count = 1;
      std::string_view target = item;
      const size_t digits = item.find_first_not_of("0123456789");
      if (digits != 0 && digits != std::string::npos) {
        const std::string_view after = std::string_view(item).substr(digits);
        const size_t x = after.find_first_not_of(' ');
        if (x != std::string_view::npos && after[x] == 'x') {
          const auto [ptr, ec] = std::from_chars(item.data(), item.data() + digits, count);
          if (ec != std::errc() || count < 1 || count > 64)
            fail("{}: count '{}' is not between 1 and 64", where, item.substr(0, digits));
          target = after.substr(x + 1);
          while (!target.empty() && target.front() == ' ') target.remove_prefix(1);
        }
      }
      HardwareProfile profile;
      if (target.ends_with(".json")) {
        // A path keeps its case: the same characters of the item before lower-casing.
        const std::string path = trim(raw).substr(item.size() - target.size());
        try {
          profile = load_profile(path);
        } catch (const Error& e) {
          fail("{}: {}", where, e.what());
        }
        if (profile.kind == HardwareKind::cpu) {
          if (count != 1 || target.size() != item.size())
            fail("{}: '{}' is a cpu profile (the host's rates); it takes no count", where, path);
          if (host_profile) fail("{}: a cpu profile is given twice", where);
          host_profile = profile;
          count = 0;  // the host, not a GPU
        }
      } else if (const HardwareProfile* known = find_builtin_profile(target); known && known->kind == HardwareKind::gpu) {
        profile = *known;
      } else if (auto bytes = try_parse_bytes(target); bytes && *bytes > 0) {
        profile = *find_builtin_profile("generic-24gb");
        profile.model = fmt::format("generic {} GPU", format_bytes(*bytes));
        profile.memory_bytes = *bytes;
      } else {
        fail("{}: unknown GPU '{}' (known: {})", where, target, known_gpu_list());
      }
      for (int i = 0; i < count; ++i) {
        gpus.push_back(device_from_profile(profile, fmt::format("cuda:{}", gpus.size())));
        host_ram_default += profile.host_ram_per_device;
      }
    }
    if (end == text.size()) break;
    begin = end + 1;
  }
  if (cpu_only && !gpus.empty()) fail("devices '{}': 'cpu' means no GPU, but GPUs are listed too", text);
  // A measured host profile knows the machine's RAM; the defaults below are guesses.
  if (!host_given && host_profile) host_ram = host_profile->memory_bytes;
  else if (!host_given) host_ram = gpus.empty() ? find_builtin_profile("cpu")->memory_bytes : host_ram_default;
  DeviceInventory inventory = make_inventory(std::move(gpus), host_ram, host_ram);
  if (host_profile) {
    DeviceSpec& host = inventory.devices.back();  // make_inventory puts the host last
    host.model = host_profile->model;
    host.throughput = host_profile->throughput;
  }
  return inventory;
}

}  // namespace ditrun::partition
