#include "partition/refusal.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "runtime/core/units.h"
#include "runtime/core/error.h"

namespace ditrun::partition {

namespace {

constexpr uint64_t kNoFit = std::numeric_limits<uint64_t>::max();

std::string join_or(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i)
    out += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
  return out;
}

// What smaller storage types would give, from the class holding most of the weight bytes.
std::string smaller_weights_hint(const ModelCost& model) {
  std::map<std::string, uint64_t> bytes_by_class;
  for (const auto& b : model.blocks) bytes_by_class[b.weight_class] += b.weight_bytes;
  const auto main = std::max_element(bytes_by_class.begin(), bytes_by_class.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  if (main->first == "bf16") return " (fp8 is 0.5x of bf16, q8_0 0.53x, q4_K 0.28x)";
  if (main->first == "fp8") return " (q8_0 is 1.06x of fp8, q4_K 0.56x)";
  return " (a smaller GGUF quant: q4_K is about 0.53x of q8_0)";
}

}  // namespace

std::string explain_no_fit(const SolverInput& in) {
  const ModelCost& model = in.model;
  const uint64_t act = model.step_activation_bytes;
  const uint64_t largest = model.largest_block_bytes();
  const uint64_t host = in.host.budget_bytes;
  const int slots = in.prefetch_slots;
  std::vector<uint64_t> weights;
  for (const auto& b : model.blocks) weights.push_back(b.weight_bytes);
  std::vector<uint64_t> budgets;
  for (const auto& g : in.devices)
    if (g.budget_bytes > 0) budgets.push_back(g.budget_bytes);

  // The CPU backend planned as a device (a budgeted "cpu") is not a GPU.
  const bool gpus = std::all_of(in.devices.begin(), in.devices.end(), [](const ComputeDevice& g) { return g.name.starts_with("cuda"); });
  const std::string_view device = gpus ? "GPU" : "device";
  std::string msg = fmt::format("plan does not fit: {} blocks weigh {} (largest {}) and each {} needs {} for activations",
                                model.blocks.size(), format_bytes(model.weight_bytes()), format_bytes(largest), device,
                                format_bytes(act));
  // One clause per budget, naming the GPUs that have it.
  std::vector<std::pair<uint64_t, std::string>> by_budget;
  for (const auto& g : in.devices) {
    if (g.budget_bytes == 0) continue;
    auto it = std::find_if(by_budget.begin(), by_budget.end(), [&](const auto& e) { return e.first == g.budget_bytes; });
    if (it == by_budget.end()) by_budget.emplace_back(g.budget_bytes, g.name);
    else it->second += ", " + g.name;
  }
  const uint64_t fixed = act + static_cast<uint64_t>(slots) * largest;
  for (const auto& [budget, names] : by_budget) {
    const bool several = names.find(',') != std::string::npos;
    if (budget >= fixed)
      msg += fmt::format("; {} {} {}{}: {} left for resident blocks beside {} slots of {}", names, several ? "have" : "has",
                         format_bytes(budget), several ? " each" : "", format_bytes(budget - fixed), slots,
                         format_bytes(largest));
    else
      msg += fmt::format("; {} {} {}{}: needs {} for activations + {} slots of the largest block", names,
                         several ? "have" : "has", format_bytes(budget), several ? " each" : "", format_bytes(fixed), slots);
  }

  const uint64_t need = min_pinned_bytes(weights, budgets, act, slots);
  std::vector<std::string> remedies;
  if (need != kNoFit && need > 0 && need <= host) {
    // The bytes fit; what failed is the time of streaming to a device that has no copy rate.
    std::vector<std::string> no_rate;
    for (const auto& g : in.devices)
      if (g.budget_bytes > 0 && g.throughput.host_to_device_bytes_per_s <= 0) no_rate.push_back(g.name);
    if (!no_rate.empty())
      return msg + fmt::format("; {} must stream from pinned host RAM, but {} {} no host->device rate in {} profile "
                               "(measure one with `ditrun bench --calibrate`)",
                               format_bytes(need), join_or(no_rate), no_rate.size() > 1 ? "have" : "has",
                               no_rate.size() > 1 ? "their" : "its");
  }
  if (need != kNoFit) {
    msg += fmt::format("; {} must stream from pinned host RAM, whose budget is {} ({} short)", format_bytes(need),
                       format_bytes(host), format_bytes(need > host ? need - host : 0));
    if (need > host) remedies.push_back(fmt::format("{} more host RAM", format_bytes(need - host)));
  } else {
    msg += fmt::format("; no split of the blocks fits these {}s, whatever the host RAM", device);
  }

  // The least extra VRAM on every GPU that makes it fit with this host budget (MiB steps).
  auto fits_with_extra = [&](uint64_t extra) {
    std::vector<uint64_t> more = budgets;
    for (auto& b : more) b += extra;
    return min_pinned_bytes(weights, more, act, slots) <= host;
  };
  uint64_t lo = 0, hi = (model.weight_bytes() + fixed) / MiB + 1;
  while (lo < hi) {
    const uint64_t mid = (lo + hi) / 2;
    if (fits_with_extra(mid * MiB)) hi = mid;
    else lo = mid + 1;
  }
  remedies.push_back(fmt::format("{} more {} per {}", format_bytes(lo * MiB), gpus ? "VRAM" : "memory", device));

  // The largest scale of every block's bytes that fits, to 1/1024.
  auto fits_scaled = [&](double scale) {
    std::vector<uint64_t> scaled;
    for (uint64_t w : weights) scaled.push_back(static_cast<uint64_t>(std::ceil(static_cast<double>(w) * scale)));
    return min_pinned_bytes(scaled, budgets, act, slots) <= host;
  };
  if (fits_scaled(0)) {
    int good = 0, bad = 1024;  // scale = k / 1024
    while (bad - good > 1) {
      const int mid = (good + bad) / 2;
      (fits_scaled(mid / 1024.0) ? good : bad) = mid;
    }
    if (good > 0)
      remedies.push_back(fmt::format("weights at {:.2f}x their size or less{}", std::floor(good / 10.24) / 100.0,
                                     smaller_weights_hint(model)));
  }
  return msg + "; it fits with " + join_or(remedies);
}

void refuse_plan(const SolverInput& input) { throw Error(explain_no_fit(input)); }

}  // namespace ditrun::partition
