// `ditrun inspect FILE [--json]`: what a checkpoint holds and how ditrun reads it: format,
// architecture and config, every tensor with its storage type and encoding, bytes per
// placement unit (the unit the planner places), and totals by storage type.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "launcher/commands.h"
#include "runtime/core/progress.h"
#include "runtime/core/units.h"
#include "models/arch/layout.h"
#include "models/pipeline/model_source.h"

namespace ditrun::launcher {
namespace {

struct Totals {
  size_t tensors = 0;
  uint64_t bytes = 0;
};

void run_inspect(const std::string& path, const std::optional<std::string>& sidecar, bool as_json) {
  const models::ModelSource src = models::open_model(path, sidecar);
  const formats::Checkpoint& ck = *src.checkpoint;
  const auto& weights = src.weights->weights();

  std::vector<std::string> unit_order = arch::placement_units(src.config);
  std::map<std::string, Totals> units, by_type;
  std::vector<std::string> extra_units;
  uint64_t total = 0;
  for (const auto& w : weights) {
    const std::string unit = arch::placement_unit(src.config, w.name);
    if (!units.count(unit) && std::find(unit_order.begin(), unit_order.end(), unit) == unit_order.end())
      extra_units.push_back(unit);
    units[unit].tensors++;
    units[unit].bytes += w.stored_bytes();
    by_type[std::string(dtype_name(w.storage))].tensors++;
    by_type[std::string(dtype_name(w.storage))].bytes += w.stored_bytes();
    total += w.stored_bytes();
  }
  unit_order.insert(unit_order.end(), extra_units.begin(), extra_units.end());

  if (as_json) {
    nlohmann::ordered_json j;
    j["file"] = path;
    j["format"] = formats::file_format_name(ck.format());
    j["file_bytes"] = ck.file_bytes();
    j["prefix"] = ck.stripped_prefix();
    j["other_component_tensors"] = ck.other_component_tensors();
    j["architecture"] = arch::family_name(src.config.family);
    j["variant"] = src.config.variant;
    j["config"] = src.config.to_json();
    j["config_source"] = src.config_source;
    j["scaled_fp8_marker"] = src.weights->has_scaled_fp8_marker();
    j["fp8_matmul_allowed"] = src.weights->fp8_matmul_allowed();
    auto& tensors = j["tensors"] = nlohmann::ordered_json::array();
    for (const auto& w : weights) {
      nlohmann::ordered_json t{{"name", w.name}, {"type", dtype_name(w.storage)}, {"encoding", quant::encoding_name(w.encoding)},
                               {"shape", w.shape}, {"bytes", w.stored_bytes()}, {"unit", arch::placement_unit(src.config, w.name)}};
      if (w.scale_layout != quant::ScaleLayout::None) t["scale_count"] = w.scales.size();
      if (w.scale_layout == quant::ScaleLayout::PerBlock) t["scale_block"] = w.scale_block;
      if (!w.unsupported.empty()) t["unsupported"] = w.unsupported;
      tensors.push_back(std::move(t));
    }
    auto& ju = j["units"] = nlohmann::ordered_json::array();
    for (const auto& u : unit_order)
      if (units.count(u)) ju.push_back({{"name", u}, {"tensors", units[u].tensors}, {"bytes", units[u].bytes}});
    auto& jt = j["totals"] = nlohmann::ordered_json::object();
    for (const auto& [type, t] : by_type) jt[type] = {{"tensors", t.tensors}, {"bytes", t.bytes}};
    j["total_bytes"] = total;
    std::cout << j.dump(2) << "\n";
    return;
  }

  fmt::print("file          {} ({}, {})\n", path, formats::file_format_name(ck.format()), format_bytes(uint64_t(ck.file_bytes())));
  if (!ck.stripped_prefix().empty())
    fmt::print("prefix        '{}' stripped ({} tensors of other components set aside)\n", ck.stripped_prefix(),
               ck.other_component_tensors());
  fmt::print("architecture  {} ({})\n", arch::family_name(src.config.family), src.config.variant);
  fmt::print("config        {} [{}]\n", src.config.to_json()["params"].dump(), src.config_source);
  if (!src.config.assumed.empty())
    fmt::print("assumed       {} (not determined by the tensors; pass --config to set)\n", fmt::join(src.config.assumed, ", "));
  fmt::print("sampling      {}\n", src.config.to_json()["sampling"].dump());
  if (src.weights->has_scaled_fp8_marker())
    fmt::print("fp8           scaled_fp8 marker present; fp8 matmul {}\n", src.weights->fp8_matmul_allowed() ? "allowed" : "off (full precision)");

  size_t name_w = 4;
  for (const auto& w : weights) name_w = std::max(name_w, w.name.size());
  fmt::print("\ntensors ({})\n  {:<{}}  {:<9} {:<11} {:<22} {:>12}\n", weights.size(), "name", name_w, "type", "encoding", "shape", "bytes");
  for (const auto& w : weights)
    fmt::print("  {:<{}}  {:<9} {:<11} {:<22} {:>12}{}\n", w.name, name_w, dtype_name(w.storage), quant::encoding_name(w.encoding),
               formats::shape_string(w.shape), w.stored_bytes(), w.unsupported.empty() ? "" : "  (" + w.unsupported + ")");

  fmt::print("\nplacement units ({})\n  {:<24} {:>8} {:>14} {:>12}\n", units.size(), "unit", "tensors", "bytes", "");
  for (const auto& u : unit_order)
    if (units.count(u)) fmt::print("  {:<24} {:>8} {:>14} {:>12}\n", u, units[u].tensors, units[u].bytes, format_bytes(uint64_t(units[u].bytes)));

  fmt::print("\ntotals by storage type\n");
  for (const auto& [type, t] : by_type)
    fmt::print("  {:<10} {:>8} tensors {:>14} bytes {:>12}\n", type, t.tensors, t.bytes, format_bytes(uint64_t(t.bytes)));
  fmt::print("  {:<10} {:>8} tensors {:>14} bytes {:>12}\n", "total", weights.size(), total, format_bytes(uint64_t(total)));
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show a checkpoint's format, architecture, config, tensors and bytes per block");
  static std::string path;
  static std::optional<std::string> sidecar;
  static bool as_json = false;
  cmd->add_option("file", path, "A .safetensors or .gguf checkpoint")->required();
  cmd->add_option("--config", sidecar, "A sidecar config JSON overriding the detected config");
  cmd->add_flag("--json", as_json, "Machine-readable output");
  cmd->callback([] { run_inspect(path, sidecar, as_json); });
}

}  // namespace ditrun::launcher
