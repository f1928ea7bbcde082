#include "launcher/planning.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "launcher/device_inventory.h"
#include "models/arch/detect.h"
#include "models/pipeline/model_source.h"
#include "models/pipeline/network.h"
#include "partition/solver.h"
#include "partition/units.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

partition::Budgets budgets_for(const partition::ModelCost& cost, const partition::DeviceInventory& inventory,
                               const DeviceChoice& devices) {
  partition::BudgetOptions options;
  options.reserve_vram_bytes = devices.reserve_vram_bytes;
  options.model_bytes = cost.weight_bytes();
  // A ratio is a share of the weights. Each GPU also needs room for a step's activations,
  // and for one more block: blocks are placed whole, so a contiguous split lands within one
  // block of the exact shares (DisTorch splits tensors; ditrun places blocks).
  options.gpu_overhead_bytes = cost.step_activation_bytes + cost.largest_block_bytes();
  return partition::resolve_budgets(partition::parse_allocation(devices.allocation), inventory, options);
}

bool any_gpu_budget(const partition::Budgets& budgets) {
  for (const auto& g : budgets.gpus)
    if (g.bytes > 0) return true;
  return false;
}

}  // namespace

uint64_t parse_reserve_vram(const std::string& text) {
  const std::string t = partition::normalize_token(text);
  char* end = nullptr;
  const double gb = std::strtod(t.c_str(), &end);
  if (!t.empty() && end == t.c_str() + t.size()) {
    if (!std::isfinite(gb) || gb < 0 || gb > 1e6) fail("--reserve-vram '{}': expected GB between 0 and 1e6", text);
    return uint64_t(gb * double(partition::GiB));
  }
  return partition::parse_bytes(t, "--reserve-vram");
}

DeviceChoice DeviceOptions::choice() const {
  DeviceChoice c;
  c.devices = devices;
  c.allocation = allocation;
  if (!reserve_vram.empty()) c.reserve_vram_bytes = parse_reserve_vram(reserve_vram);
  c.objective = partition::parse_objective(objective);
  if (!device_memory.empty()) c.cpu_device_memory_bytes = partition::parse_bytes(device_memory, "--device-memory");
  return c;
}

void add_device_options(CLI::App& cmd, DeviceOptions& o, bool with_device_memory) {
  cmd.add_option("--devices", o.devices,
                 "Plan for these devices instead of this machine's: \"4x h100-80gb\", \"2x 24gb, host=64gb\", "
                 "\"cpu, host=64gb\", or a profile from `ditrun bench --calibrate` (cpu-calibrated.json)");
  cmd.add_option("--allocation", o.allocation,
                 "Memory each device may use: \"cuda:0,12gb;cuda:1,12gb;cpu,*\", fractions (0.5) or ratios (40%)");
  cmd.add_option("--reserve-vram", o.reserve_vram, "Keep this much free on every GPU: GB (as ComfyUI) or a size (512mb)");
  cmd.add_option("--objective", o.objective, "latency (one job as fast as possible) or throughput (jobs per hour)")
      ->capture_default_str();
  if (with_device_memory)
    cmd.add_option("--device-memory", o.device_memory,
                   "Plan for the CPU backend with this device-memory budget (activations + weights): blocks that "
                   "do not fit stream, as on a GPU of that size");
}

ModelPlan plan_model(const arch::ModelConfig& config, const runtime::Model& network,
                     const models::FindStoredWeight& weights, const models::JobGeometry& job,
                     const DeviceChoice& devices) {
  ModelPlan out;
  out.inventory = device_inventory(devices.devices);
  if (devices.cpu_backend && !out.inventory.gpus().empty()) {
    if (!devices.devices.empty())
      fail("--devices '{}' names GPUs, but this run computes on the CPU backend (no CUDA backend yet)", devices.devices);
    std::erase_if(out.inventory.devices, [](const partition::DeviceSpec& d) { return d.kind == partition::DeviceKind::gpu; });
  }
  if (devices.cpu_device_memory_bytes > 0) {
    if (!out.inventory.gpus().empty())
      fail("--device-memory plans for the CPU backend, but the devices ({}) include GPUs; use --allocation to "
           "budget GPUs",
           out.inventory.names());
    // The CPU backend as the one compute device: its budget in place of a GPU's, its rates,
    // and streaming at its copy rate from the pinned pool the host budget allows.
    out.cost = models::model_cost(config, network, weights, job, models::kCpuActivationBytes);
    out.budgets = budgets_for(out.cost, out.inventory, devices);
    partition::SolverInput input = partition::make_solver_input(out.cost, out.inventory, out.budgets, devices.objective);
    input.gpus = {partition::ComputeDevice{"cpu", out.inventory.host().throughput, devices.cpu_device_memory_bytes}};
    out.plan = partition::solve(input);
    return out;
  }
  out.cost = models::model_cost(config, network, weights, job, models::kGpuActivationBytes);
  out.budgets = budgets_for(out.cost, out.inventory, devices);
  if (!any_gpu_budget(out.budgets)) {
    // Everything runs on the CPU backend, whose activations are f32.
    out.cost = models::model_cost(config, network, weights, job, models::kCpuActivationBytes);
    out.budgets = budgets_for(out.cost, out.inventory, devices);
  }
  out.plan = partition::solve(partition::make_solver_input(out.cost, out.inventory, out.budgets, devices.objective));
  return out;
}

JobPlan plan_job(const PlanRequest& request) {
  JobPlan out;
  std::optional<models::ModelSource> source;
  std::error_code ec;
  if (std::filesystem::exists(request.model, ec)) {
    if (request.weights)
      fail("--weights {}: {} is a checkpoint, whose weights are read from the file (--weights is for presets)",
           *request.weights, request.model);
    source = models::open_model(request.model, request.config);
    out.config = source->config;
    out.model = fmt::format("{} ({})", request.model, out.config.variant);
  } else {
    const auto names = arch::preset_names();
    if (std::find(names.begin(), names.end(), request.model) == names.end())
      fail("model '{}' is neither a file nor a preset (presets: {})", request.model, fmt::join(names, ", "));
    if (request.config) fail("--config {}: a preset has its own config; --config is for checkpoints", *request.config);
    out.config = arch::preset(request.model, "model");
    out.model = fmt::format("{} preset, {} weights", request.model, request.weights.value_or("bf16"));
  }
  const std::unique_ptr<runtime::Model> network = models::make_network(out.config);
  out.job = models::job_geometry(out.config, request.job);
  if (source) {
    models::check_weights_present(*network, *source->weights);
    out.planned = plan_model(out.config, *network, models::checkpoint_weights(*source->weights), out.job, request.devices);
  } else {
    const quant::ConversionTarget target = quant::ConversionTarget::parse(request.weights.value_or("bf16"));
    out.planned = plan_model(out.config, *network, models::converted_weights(out.config, target), out.job, request.devices);
  }
  return out;
}

}  // namespace ditrun::launcher
