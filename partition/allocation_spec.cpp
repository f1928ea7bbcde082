#include "partition/allocation_spec.h"

#include <charconv>
#include <cmath>

#include "runtime/core/units.h"
#include "runtime/core/error.h"

namespace ditrun::partition {

bool AllocationSpec::uses_ratios() const {
  for (const auto& e : entries)
    if (e.kind == AllocationEntry::Kind::ratio) return true;
  return false;
}

std::string Budgets::describe() const {
  std::string out;
  for (const auto& g : gpus) out += fmt::format("{} {}, ", g.device, format_bytes(g.bytes));
  return out + fmt::format("cpu {}", format_bytes(host_bytes));
}

namespace {

using Kind = AllocationEntry::Kind;

bool is_device_name(std::string_view name) {
  if (name == "cpu") return true;
  return name.starts_with("cuda:") && name.size() > 5 && name.size() < 9 &&
         name.find_first_not_of("0123456789", 5) == std::string_view::npos;
}

// The whole string must be a plain decimal number ("0.5", "40", ".25").
bool parse_number(std::string_view s, double& out) {
  if (s.empty() || s.find_first_not_of("0123456789.") != std::string_view::npos) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(out);
}

[[noreturn]] void token_error(std::string_view text, const AllocationEntry& e, std::string_view what) {
  fail("allocation '{}': token {} '{}': {}", text, e.index, e.token, what);
}

void parse_amount(std::string_view text, AllocationEntry& e, std::string_view amount) {
  double number = 0;
  if (amount == "*") {
    e.kind = Kind::rest;
  } else if (amount.ends_with('%')) {
    e.kind = Kind::ratio;
    if (!parse_number(amount.substr(0, amount.size() - 1), number) || number <= 0 || number > 100)
      token_error(text, e, fmt::format("'{}' is not a ratio above 0% and at most 100%", amount));
    e.value = number;
  } else if (parse_number(amount, number)) {
    // A bare number is a fraction of the device: bytes need a unit so that "2" cannot mean
    // two bytes by accident.
    if (number > 1) token_error(text, e, fmt::format("'{}' is not a fraction in [0, 1]; write {}gb for a size", amount, amount));
    e.kind = Kind::fraction;
    e.value = number;
  } else if (auto bytes = try_parse_bytes(amount)) {
    e.kind = Kind::bytes;
    e.bytes = *bytes;
  } else {
    token_error(text, e, fmt::format("'{}' is not a size (use 12gb, 40% or 0.5)", amount));
  }
}

}  // namespace

AllocationSpec parse_allocation(std::string_view text) {
  AllocationSpec spec{std::string(text), {}};
  if (normalize_token(text).empty()) return spec;
  double ratio_sum = 0;
  size_t begin = 0;
  for (int index = 1;; ++index) {
    const size_t end = std::min(text.find(';', begin), text.size());
    AllocationEntry e;
    e.index = index;
    e.token = normalize_token(text.substr(begin, end - begin));
    const bool last = end == text.size();
    if (e.token.empty()) {
      if (last) break;  // "cuda:0,12gb;" is fine
      token_error(text, e, "empty (write device,amount such as cuda:0,12gb)");
    }
    const size_t comma = e.token.find(',');
    if (comma == std::string::npos || e.token.find(',', comma + 1) != std::string::npos)
      token_error(text, e, "expected device,amount (such as cuda:0,12gb or cpu,*)");
    e.device = normalize_token(std::string_view(e.token).substr(0, comma));
    if (!is_device_name(e.device))
      token_error(text, e, fmt::format("'{}' is not a device (use cuda:0, cuda:1, ... or cpu)", e.device));
    for (const auto& prior : spec.entries)
      if (prior.device == e.device)
        token_error(text, e, fmt::format("{} is already given by token {}", e.device, prior.index));
    parse_amount(text, e, normalize_token(std::string_view(e.token).substr(comma + 1)));
    if (!spec.entries.empty() && (e.kind == Kind::ratio) != spec.uses_ratios())
      token_error(text, e,
                  fmt::format("cannot mix ratios with sizes (token {} is '{}'): ratios share the model, "
                              "sizes share memory",
                              spec.entries.front().index, spec.entries.front().token));
    if (e.kind == Kind::ratio) {
      ratio_sum += e.value;
      if (ratio_sum > 100 + 1e-9)
        token_error(text, e, fmt::format("ratios add up to {:g}% by here, more than 100%", ratio_sum));
    }
    spec.entries.push_back(std::move(e));
    if (last) break;
    begin = end + 1;
  }
  return spec;
}

Budgets resolve_budgets(const AllocationSpec& spec, const DeviceInventory& inventory, const BudgetOptions& options) {
  auto usable = [&](const DeviceSpec& d) {
    const uint64_t reserve = d.kind == HardwareKind::gpu ? options.reserve_vram_bytes : options.reserve_host_bytes;
    return d.free_bytes > reserve ? d.free_bytes - reserve : 0;
  };
  auto usable_note = [&](const DeviceSpec& d) {
    const uint64_t reserve = d.kind == HardwareKind::gpu ? options.reserve_vram_bytes : options.reserve_host_bytes;
    return fmt::format("{} has {} usable ({} free, {} reserved)", d.name, format_bytes(usable(d)),
                       format_bytes(d.free_bytes), format_bytes(reserve));
  };

  Budgets budgets;
  const DeviceSpec& host = inventory.host();
  if (spec.entries.empty()) {
    for (const DeviceSpec* g : inventory.gpus()) budgets.gpus.push_back({g->name, usable(*g)});
    budgets.host_bytes = usable(host);
    return budgets;
  }

  double ratio_sum = 0;
  for (const auto& e : spec.entries) ratio_sum += e.kind == Kind::ratio ? e.value : 0;
  std::vector<std::pair<const DeviceSpec*, uint64_t>> chosen;
  for (const auto& e : spec.entries) {
    const DeviceSpec* d = inventory.find(e.device);
    if (!d) token_error(spec.text, e, fmt::format("no device {} (have {})", e.device, inventory.names()));
    uint64_t bytes = 0;
    switch (e.kind) {
      case Kind::bytes: bytes = e.bytes; break;
      case Kind::rest: bytes = usable(*d); break;
      case Kind::fraction: bytes = static_cast<uint64_t>(std::llround(e.value * static_cast<double>(d->total_bytes))); break;
      case Kind::ratio:
        if (options.model_bytes == 0)
          token_error(spec.text, e, "ratios are shares of the model, whose size is not known here; use sizes");
        bytes = static_cast<uint64_t>(std::llround(e.value / ratio_sum * static_cast<double>(options.model_bytes)));
        if (d->kind == HardwareKind::gpu) bytes += options.gpu_overhead_bytes;
        break;
    }
    if (bytes > usable(*d))
      token_error(spec.text, e,
                  fmt::format("asks {} but {}{}", format_bytes(bytes), usable_note(*d),
                              e.kind == Kind::rest ? "" : "; use * for all of it"));
    chosen.emplace_back(d, bytes);
  }
  // GPUs in inventory order, so that ranks follow device numbering whatever the spec's order.
  for (const DeviceSpec* g : inventory.gpus())
    for (const auto& [d, bytes] : chosen)
      if (d == g) budgets.gpus.push_back({g->name, bytes});
  for (const auto& [d, bytes] : chosen)
    if (d == &host) budgets.host_bytes = bytes;
  return budgets;
}

}  // namespace ditrun::partition
