#include "launcher/planning.h"

#include "runtime/exec/expert_pair.h"
#include "runtime/run/sampling_job.h"
#include "runtime/sampling/schedule.h"
#include "runtime/sampling/wan_solvers.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <optional>
#include <charconv>
#include <cmath>
#include <filesystem>

#include "launcher/device_inventory.h"
#include "models/pipeline/noise_file.h"
#include "models/pipeline/tensor_files.h"
#include "models/arch/detect.h"
#include "models/pipeline/denoiser.h"
#include "models/pipeline/model_source.h"
#include "runtime/sampling/schedule.h"
#include "runtime/sampling/wan_solvers.h"
#include "models/pipeline/network.h"
#include "partition/solver.h"
#include "runtime/core/units.h"
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
  partition::Budgets budgets = partition::resolve_budgets(partition::parse_allocation(devices.allocation), inventory, options);
  // The VAE decodes, and the encoders given room run, on rank 0's device: the first GPU with a budget.
  if (devices.vae_bytes + devices.encoder_bytes > 0) {
    for (auto& g : budgets.gpus) {
      if (g.bytes == 0) continue;
      if (g.bytes <= devices.vae_bytes)
        fail("{}'s budget ({}) cannot hold the VAE that decodes on it ({}): give it more memory, or smaller tiles "
             "(--vae-memory)",
             g.device, format_bytes(g.bytes), format_bytes(devices.vae_bytes));
      if (g.bytes <= devices.vae_bytes + devices.encoder_bytes)
        fail("{}'s budget ({}) cannot hold the text encoders ({}) beside the VAE ({})", g.device, format_bytes(g.bytes),
             format_bytes(devices.encoder_bytes), format_bytes(devices.vae_bytes));
      g.bytes -= devices.vae_bytes + devices.encoder_bytes;
      break;
    }
  }
  return budgets;
}

// The GPUs of a CUDA run's ranks: this process's GPU once per rank (see DeviceChoice::gpu_ranks).
partition::DeviceInventory gpus_of_ranks(const partition::DeviceInventory& local, const DeviceChoice& devices) {
  const std::string name = fmt::format("cuda:{}", devices.cuda_device);
  const auto gpus = local.gpus();
  auto mine = std::find_if(gpus.begin(), gpus.end(), [&](const partition::DeviceSpec* d) { return d->name == name; });
  if (mine == gpus.end()) fail("the run computes on {}, which this machine does not have ({})", name, local.names());
  std::vector<partition::DeviceSpec> ranks;
  for (int r = 0; r < devices.gpu_ranks; ++r) {
    partition::DeviceSpec d = **mine;
    if (devices.gpu_ranks > 1) d.name = fmt::format("cuda:{}", r);
    ranks.push_back(std::move(d));
  }
  return partition::make_inventory(std::move(ranks), local.host().total_bytes, local.host().free_bytes);
}

bool any_gpu_budget(const partition::Budgets& budgets) {
  for (const auto& g : budgets.gpus)
    if (g.bytes > 0) return true;
  return false;
}

}  // namespace

// The job the plan is made for: the one with the most latent pixels (activations grow with
// them), its prompt length read from its conditioning when it has one.
models::JobSettings largest_job_settings(const std::vector<JobLine>& lines, const arch::ModelConfig& config) {
  const int64_t stride = models::latent_stride(config);
  const Job* largest = nullptr;
  int64_t largest_pixels = -1;
  models::JobSettings settings;
  for (const JobLine& l : lines) {
    if (!l.ok()) continue;
    const Job& job = *l.job;
    int64_t width = job.width.value_or(0), height = job.height.value_or(0), frames = job.frames.value_or(1);
    if (!job.width && job.noise) {
      try {  // a noise file fixes the size: [C, H/s, W/s] or [C, (frames-1)/4+1, H/s, W/s]
        const Shape s = models::load_noise_file(*job.noise).shape;
        height = s[s.size() - 2] * stride, width = s.back() * stride;
        if (s.size() == 4) frames = (s[1] - 1) * 4 + 1;
      } catch (const Error&) {
        continue;  // the job fails with that message when it runs
      }
    }
    if (width * height * frames <= largest_pixels) continue;
    largest = &job;
    largest_pixels = width * height * frames;
    settings = {};
    if (width > 0) settings.width = width, settings.height = height;
    if (job.frames || frames > 1) settings.frames = frames;
    settings.steps = job.steps;
    settings.cfg = job.cfg;
  }
  if (largest) {
    try {  // Flux prompts vary in length; Wan pads its context to text_len anyway
      const auto cond = models::read_host_tensors(largest->cond);
      if (auto txt = cond.find("txt"); txt != cond.end() && !txt->second.shape.empty())
        settings.text_tokens = txt->second.shape.front();
    } catch (const Error&) {
    }
  }
  return settings;
}

partition::Plan read_plan_file(const std::string& path) {
  try {
    return partition::plan_from_json(models::read_json_file(path));
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
}

uint64_t parse_reserve_vram(const std::string& text) {
  const std::string t = normalize_token(text);
  char* end = nullptr;
  const double gb = std::strtod(t.c_str(), &end);
  if (!t.empty() && end == t.c_str() + t.size()) {
    if (!std::isfinite(gb) || gb < 0 || gb > 1e6) fail("--reserve-vram '{}': expected GB between 0 and 1e6", text);
    return uint64_t(gb * double(GiB));
  }
  return parse_bytes(t, "--reserve-vram");
}

partition::Layout parse_mode(const std::string& mode, int stages, int ranks) {
  if (stages < 0) fail("--stages {}: must be positive", stages);
  if (mode == "auto") {
    if (stages > 0) fail("--stages {} needs --mode pipeline or replicas", stages);
    return {};
  }
  if (mode == "pipeline") {
    if (stages > 0 && stages != ranks)
      fail("--mode pipeline puts all {} ranks in one pipeline; --stages {} asks for another shape (use --mode "
           "replicas --stages {} for replicas of pipelines)",
           ranks, stages, stages);
    return {1, ranks};
  }
  if (mode == "replicas") {
    const int k = stages == 0 ? 1 : stages;
    if (ranks % k != 0) fail("--mode replicas --stages {}: {} ranks do not form groups of {}", k, ranks, k);
    return {ranks / k, k};
  }
  fail("--mode '{}': expected auto, pipeline or replicas", mode);
}

DeviceChoice DeviceOptions::choice() const {
  DeviceChoice c;
  c.inventory = inventory;
  c.allocation = allocation;
  if (!reserve_vram.empty()) c.reserve_vram_bytes = parse_reserve_vram(reserve_vram);
  c.objective = partition::parse_objective(objective.empty() ? "latency" : objective);
  if (!device_memory.empty()) c.cpu_device_memory_bytes = parse_bytes(device_memory, "--device-memory");
  c.mode = mode;
  c.stages = stages;
  return c;
}

void add_device_options(CLI::App& cmd, DeviceOptions& o, bool with_device_memory) {
  cmd.add_option("--devices", o.inventory,
                 "Plan for these devices instead of this machine's: \"4x h100-80gb\", \"2x 24gb, host=64gb\", "
                 "\"cpu, host=64gb\", or a profile from `ditrun bench --calibrate` (cpu-calibrated.json)");
  cmd.add_option("--allocation", o.allocation,
                 "Memory each device may use: \"cuda:0,12gb;cuda:1,12gb;cpu,*\", fractions (0.5) or ratios (40%)");
  cmd.add_option("--reserve-vram", o.reserve_vram, "Keep this much free on every GPU: GB (as ComfyUI) or a size (512mb)");
  cmd.add_option("--objective", o.objective,
                 "latency (one job as fast as possible) or throughput (jobs per hour); default: latency, but "
                 "throughput for a run under mpirun");
  cmd.add_option("--mode", o.mode,
                 "auto (the planner decides), pipeline (every rank one stage of one pipeline) or replicas (groups of "
                 "--stages ranks, default 1, each rendering its own jobs)")
      ->capture_default_str();
  cmd.add_option("--stages", o.stages, "With --mode replicas: stages per group (replicas of pipelines)");
  if (with_device_memory)
    cmd.add_option("--device-memory", o.device_memory,
                   "Plan for the CPU backend with this device-memory budget (activations + weights): blocks that "
                   "do not fit stream, as on a GPU of that size");
}

partition::Plan share_planned_steps(const ModelPlan& planned, const DeviceOptions& devices,
                                    const arch::ModelConfig& config) {
  // CPU plans run at the host's rates; GPU plans at the first GPU's (a team is one class).
  const bool gpu = planned.plan.ranks.front().device.starts_with("cuda");
  const std::vector<const partition::DeviceSpec*> gpus = planned.inventory.gpus();
  const partition::Throughput& rates =
      gpu && !gpus.empty() ? gpus.front()->throughput : planned.inventory.host().throughput;
  // The ring the run will use: asked for, or what the head count leaves (SequenceParallel).
  const int n = devices.sequence_parallel;
  const int64_t heads = config.attention_heads();
  if (devices.ring > 0 && (n % devices.ring != 0 || heads % (n / devices.ring) != 0))
    fail("--ring {} with --sp {}: the ring must divide the sequence ranks, and the rest ({}) the {} heads", devices.ring,
         n, devices.ring > 0 && n % devices.ring == 0 ? n / devices.ring : 0, heads);
  const int ring = devices.ring > 0 ? devices.ring : n / int(std::gcd(int64_t(n), heads));
  partition::Plan shared = partition::share_steps(planned.plan, n, devices.cfg_parallel ? 2 : 1, &planned.cost, &rates,
                                                  ring > 1 ? ring : 0);
  shared.sequence_ring = devices.ring;
  return shared;
}

SharingChoice fastest_sharing(int count, const models::JobGeometry& job, const arch::ModelConfig& config,
                              const std::function<ModelPlan(const DeviceOptions& sharing)>& plan_for) {
  SharingChoice best;
  // Whole steps may not fit one device: then only teams (whose ranks hold a share of the
  // activations) can run the job.
  std::optional<std::string> whole_refused;
  double whole = std::numeric_limits<double>::infinity();
  try {
    best.planned = plan_for(DeviceOptions{});
    best.plan = best.planned.plan;
    whole = best.plan.predicted.step_seconds;
  } catch (const Error& e) {
    whole_refused = e.what();
  }
  double best_step = whole;
  std::string tried;
  for (int team = 2; team <= count; ++team) {
    if (count % team != 0) continue;
    for (const bool cfg : {false, true}) {
      if (cfg && (job.batch != 2 || team % 2 != 0)) continue;
      DeviceOptions sharing;
      sharing.sequence_parallel = cfg ? team / 2 : team;
      sharing.cfg_parallel = cfg;
      if (job.tokens.image < sharing.sequence_parallel) continue;
      const std::string name =
          fmt::format("--sp {}{}", sharing.sequence_parallel, cfg ? " --cfg-parallel" : "");
      try {
        const ModelPlan planned = plan_for(sharing);
        const partition::Plan shared = share_planned_steps(planned, sharing, config);
        tried += fmt::format("{}{} {}", tried.empty() ? "" : ", ", name, format_seconds(shared.predicted.step_seconds));
        if (shared.predicted.step_seconds < 0.95 * best_step) {
          best.planned = planned;
          best.plan = shared;
          best.sequence_parallel = sharing.sequence_parallel;
          best.cfg_parallel = cfg;
          best_step = shared.predicted.step_seconds;
        }
      } catch (const Error& e) {
        tried += fmt::format("{}{} refused", tried.empty() ? "" : ", ", name);
      }
    }
  }
  if (whole_refused && best.sequence_parallel == 1 && !best.cfg_parallel)
    fail("{} (and no team of these {} devices fits it either{})", *whole_refused, count,
         tried.empty() ? "" : ": " + tried);
  if (whole_refused) {
    best.why = fmt::format("teams of {} (--sp {}{}) for the latency objective: whole steps do not fit ({}); {} per "
                           "step (tried {})",
                           best.plan.team_size(), best.sequence_parallel, best.cfg_parallel ? " --cfg-parallel" : "",
                           *whole_refused, format_seconds(best.plan.predicted.step_seconds), tried);
  } else if (tried.empty()) {
    best.why = "whole steps (no team fits these devices)";
  } else if (best.sequence_parallel == 1 && !best.cfg_parallel) {
    best.why = fmt::format("whole steps, {} per step: no team is 5% faster ({})", format_seconds(whole), tried);
  } else {
    best.why = fmt::format("teams of {} (--sp {}{}) for the latency objective: {} per step against {} with whole "
                           "steps (tried {})",
                           best.plan.team_size(), best.sequence_parallel, best.cfg_parallel ? " --cfg-parallel" : "",
                           format_seconds(best.plan.predicted.step_seconds), format_seconds(whole), tried);
  }
  return best;
}

void add_sharing_options(CLI::App& cmd, DeviceOptions& o) {
  cmd.add_option("--sp", o.sequence_parallel,
                 "Sequence parallel: N ranks share each stage of one job, each holding 1/N of its image or video "
                 "tokens (Ulysses all-to-all as far as the heads allow, ring attention for the rest)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--ring", o.ring,
                 "With --sp N: ring attention over K of the N ranks, Ulysses over the other N/K (which must divide "
                 "the heads); default: Ulysses over as many as the heads allow, ring for the rest")
      ->check(CLI::PositiveNumber);
  cmd.add_flag("--cfg-parallel", o.cfg_parallel,
               "The cond and uncond halves of a guided step on two ranks (a job without CFG splits its tokens "
               "over them instead)");
}

namespace {

// Where every unit goes for these weights (both experts' of a pair, or one expert's).
ModelPlan plan_placement(const arch::ModelConfig& config, const runtime::Model& network,
                         const models::FindStoredWeight& weights, const models::JobGeometry& job,
                         const DeviceChoice& devices) {
  ModelPlan out;
  out.inventory = device_inventory(devices.inventory);
  if (devices.cpu_backend && !out.inventory.gpus().empty()) {
    if (!devices.inventory.empty())
      fail("--devices '{}' names GPUs, but this run computes on the CPU backend (--backend cpu, or no GPU)",
           devices.inventory);
    std::erase_if(out.inventory.devices, [](const partition::DeviceSpec& d) { return d.kind == partition::HardwareKind::gpu; });
  }
  if (devices.gpu_ranks > 0 && devices.inventory.empty()) out.inventory = gpus_of_ranks(out.inventory, devices);
  if (devices.gpus_form_teams && devices.team() > 1) {
    const size_t gpus = out.inventory.gpus().size();
    if (gpus > 0) {
      if (gpus % size_t(devices.team()) != 0)
        fail("{} GPU(s) do not form teams of {} ranks (--sp x --cfg-parallel)", gpus, devices.team());
      size_t kept = 0;
      std::erase_if(out.inventory.devices, [&](const partition::DeviceSpec& d) {
        return d.kind == partition::HardwareKind::gpu && kept++ >= gpus / size_t(devices.team());
      });
    }
  }
  // The model's cost at `element_bytes` per activation; a team member's activations are its
  // share's (the prologue runs whole, but the blocks' temporaries on 1/N of the tokens set the
  // peak: measured 0.50x of one rank at SP 2).
  const auto cost_at = [&](int element_bytes) {
    partition::ModelCost cost = models::model_cost(config, network, weights, job, element_bytes);
    if (devices.team() > 1) {
      runtime::TokenCounts share = job.tokens;
      share.image = (share.image + devices.sequence_parallel - 1) / devices.sequence_parallel;
      const int64_t batch = std::max<int64_t>(1, job.batch / devices.cfg_parallel);
      cost.step_activation_bytes = uint64_t(network.activation_elements(share, batch)) * uint64_t(element_bytes);
    }
    return cost;
  };
  if (devices.cpu_ranks < 1) fail("cpu ranks: {} (at least 1)", devices.cpu_ranks);
  if (devices.cpu_device_memory_bytes > 0 || devices.cpu_ranks > 1) {
    if (!out.inventory.gpus().empty())
      fail("--device-memory and CPU ranks plan for the CPU backend, but the devices ({}) include GPUs; use "
           "--allocation to budget GPUs",
           out.inventory.names());
    // The CPU backend as the compute device(s), one per rank: a budget in place of a GPU's
    // (--device-memory, or an equal share of the host's RAM), its rates, and streaming at its
    // copy rate from the pinned pool the host budget allows. Named "cpu" for one rank,
    // "cpu:0", "cpu:1", ... for several (a plan names each rank's device once).
    out.cost = cost_at(models::kCpuActivationBytes);
    out.budgets = budgets_for(out.cost, out.inventory, devices);
    partition::SolverInput input = partition::make_solver_input(out.cost, out.inventory, out.budgets, devices.objective);
    const uint64_t budget = devices.cpu_device_memory_bytes > 0 ? devices.cpu_device_memory_bytes
                                                                : out.budgets.host_bytes / uint64_t(devices.cpu_ranks);
    input.devices.clear();
    for (int r = 0; r < devices.cpu_ranks; ++r)
      input.devices.push_back({devices.cpu_ranks == 1 ? "cpu" : fmt::format("cpu:{}", r), out.inventory.host().throughput,
                            budget});
    input.layout = parse_mode(devices.mode, devices.stages, devices.cpu_ranks);
    input.layout.ranks = devices.cpu_ranks;  // every rank started takes part
    out.plan = partition::solve(input);
    return out;
  }
  out.cost = cost_at(devices.gpu_activation_bytes);
  out.budgets = budgets_for(out.cost, out.inventory, devices);
  if (devices.gpu_ranks > 0 && !any_gpu_budget(out.budgets))
    fail("the run computes on CUDA, but the allocation gives its GPUs no memory ({})", out.budgets.describe());
  if (!any_gpu_budget(out.budgets)) {
    // Everything runs on the CPU backend, whose activations are f32.
    out.cost = cost_at(models::kCpuActivationBytes);
    out.budgets = budgets_for(out.cost, out.inventory, devices);
  }
  partition::SolverInput input = partition::make_solver_input(out.cost, out.inventory, out.budgets, devices.objective);
  const int gpus = int(std::count_if(input.devices.begin(), input.devices.end(),
                                     [](const partition::ComputeDevice& g) { return g.budget_bytes > 0; }));
  input.layout = parse_mode(devices.mode, devices.stages, gpus);
  if (devices.gpu_ranks > 0) {
    if (gpus != devices.gpu_ranks)
      fail("the run has {} rank(s) but the devices give {} GPU(s) a budget ({})", devices.gpu_ranks, gpus,
           out.budgets.describe());
    input.layout.ranks = devices.gpu_ranks;  // every rank started takes part
  }
  out.plan = partition::solve(input);
  return out;
}

// A pair network's weights as a rank holding one expert at a time sees them: each unit as
// large as the larger expert's (either may be loaded), nothing for the other's names.
models::FindStoredWeight one_expert_at_a_time(models::FindStoredWeight pair) {
  return [pair = std::move(pair)](const std::string& name) -> std::optional<models::StoredWeight> {
    const auto split = runtime::split_expert_weight_name(name);
    if (!split || split->expert != runtime::Expert::high_noise) return std::nullopt;
    const auto high = pair(name), low = pair(runtime::expert_weight_name(runtime::Expert::low_noise, split->name));
    if (!high || !low) return high ? high : low;
    return high->bytes >= low->bytes ? high : low;
  };
}

// One load of an expert's share on the slowest rank: its resident and streamed bytes at its
// host-to-device rate.
double expert_load_seconds(const ModelPlan& planned) {
  double slowest = 0;
  for (const partition::RankPlan& r : planned.plan.ranks) {
    const partition::DeviceSpec* device = planned.inventory.find(r.device);
    const double rate = device && device->throughput.host_to_device_bytes_per_s > 0
                            ? device->throughput.host_to_device_bytes_per_s
                            : planned.inventory.host().throughput.memory_bytes_per_s;
    if (rate > 0) slowest = std::max(slowest, double(r.resident_bytes() + r.streamed_bytes()) / rate);
  }
  return slowest;
}

// A job's seconds and seconds per job (amortized over the groups) under a strategy: swap
// renders one job at a time per group, with two expert loads per job.
std::pair<double, double> job_times(const partition::Plan& plan, int steps, double loads_seconds) {
  const double job = double(steps) * plan.predicted.step_seconds + loads_seconds;
  if (loads_seconds > 0) return {job, job / double(plan.group_count())};
  return {job, double(steps) * plan.predicted.throughput_step_seconds};
}

}  // namespace

int high_noise_steps(const arch::ModelConfig& config, int steps) {
  if (config.experts != 2 || steps < 1) return 0;
  // The default schedule, and the jobs' own rule for which expert a step runs.
  const runtime::Shift shift = runtime::Shift::parse(config.sampling.shift);
  const double constant = shift.kind == runtime::Shift::Constant ? shift.value : 1.0;
  runtime::SamplingJob job;
  job.experts = runtime::ExpertSwitch{config.sampling.boundary, config.sampling.cfg_low};
  if (const auto solver = runtime::wan_solver_from_name(config.sampling.sampler)) {
    runtime::WanSchedule schedule = runtime::wan_schedule(*solver, steps, constant);
    job.sigmas = std::move(schedule.sigmas);
    job.timesteps = std::move(schedule.timesteps);
  } else {
    job.sigmas = runtime::flow_sigmas(steps, shift, 0);
  }
  int high = 0;
  for (int k = 0; k < steps; ++k) high += job.expert_at(k) == runtime::Expert::high_noise;
  return high;
}

ModelPlan plan_model(const arch::ModelConfig& config, const runtime::Model& network,
                     const models::FindStoredWeight& weights, const models::JobGeometry& job,
                     const DeviceChoice& devices) {
  if (config.experts != 2) return plan_placement(config, network, weights, job, devices);
  // Two experts: each strategy that fits is planned and predicted (job seconds, seconds per
  // job amortized), and the fastest for the objective kept.
  const int high = high_noise_steps(config, job.steps), low = job.steps - high;
  struct Candidate {
    partition::ExpertStrategy strategy;
    ModelPlan planned;
    double job_seconds, seconds_per_job, load_seconds = 0;
  };
  std::vector<Candidate> candidates;
  std::string first_error;
  const auto attempt = [&](const auto& make) {
    try {
      make();
    } catch (const Error& e) {
      if (first_error.empty()) first_error = e.what();
    }
  };
  attempt([&] {  // both experts' blocks on every rank
    ModelPlan m = plan_placement(config, network, weights, job, devices);
    const auto [job_seconds, per_job] = job_times(m.plan, job.steps, 0);
    candidates.push_back({partition::ExpertStrategy::both, std::move(m), job_seconds, per_job});
  });
  attempt([&] {  // one expert at a time, swapped twice per job
    ModelPlan m = plan_placement(config, network, one_expert_at_a_time(weights), job, devices);
    const double loads = 2 * expert_load_seconds(m);
    const auto [job_seconds, per_job] = job_times(m.plan, job.steps, loads);
    candidates.push_back({partition::ExpertStrategy::swap, std::move(m), job_seconds, per_job, loads / 2});
  });
  // Each expert on its own groups: replicas of one expert, the groups split between the phases
  // by their steps; a job's step is one group's, the amortized time the busier phase's.
  if ((devices.mode == "auto" || devices.mode == "replicas") && devices.team() == 1 && high > 0 && low > 0)
    attempt([&] {
      DeviceChoice replicas = devices;
      replicas.mode = "replicas";
      ModelPlan m = plan_placement(config, network, one_expert_at_a_time(weights), job, replicas);
      const int groups = m.plan.group_count();
      if (groups < 2) return;
      const int high_groups = std::clamp(int(std::lround(double(groups) * high / job.steps)), 1, groups - 1);
      for (partition::RankPlan& r : m.plan.ranks)
        r.expert = runtime::expert_name(r.group < high_groups ? runtime::Expert::high_noise : runtime::Expert::low_noise);
      const double step = m.plan.predicted.step_seconds;
      const double per_job = std::max(high * step / high_groups, low * step / (groups - high_groups));
      candidates.push_back({partition::ExpertStrategy::phases, std::move(m), job.steps * step, per_job});
    });
  if (candidates.empty()) fail("{}", first_error);
  const bool latency = devices.objective == partition::Objective::latency;
  const auto cost = [&](const Candidate& c) { return latency ? c.job_seconds : c.seconds_per_job; };
  // Strictly faster only: ties keep the simpler strategy (both, then swap).
  size_t best = 0;
  for (size_t k = 1; k < candidates.size(); ++k)
    if (cost(candidates[k]) < cost(candidates[best])) best = k;
  Candidate& chosen = candidates[best];
  partition::ExpertPlan experts;
  experts.strategy = chosen.strategy;
  experts.swap_seconds = chosen.load_seconds;
  experts.high_steps = high;
  experts.low_steps = low;
  for (size_t k = 0; k < candidates.size(); ++k)
    if (k != best && (!experts.alternative_job_seconds || candidates[k].job_seconds < *experts.alternative_job_seconds))
      experts.alternative_job_seconds = candidates[k].job_seconds;
  ModelPlan out = std::move(chosen.planned);
  out.plan.predicted.job_seconds = chosen.job_seconds;
  out.plan.predicted.seconds_per_job = chosen.seconds_per_job;
  out.plan.experts = experts;
  return out;
}

namespace {

// A preset of a two-expert release (Wan 2.2 A14B) plans both experts.
arch::ModelConfig preset_config(const std::string& name) {
  arch::ModelConfig config = arch::preset(name, "model");
  if (config.sampling.boundary > 0) config.experts = 2;
  return config;
}

}  // namespace

models::JobGeometry job_of(const PlanRequest& request, arch::ModelConfig* config_out) {
  std::error_code ec;
  const arch::ModelConfig config = std::filesystem::exists(request.model, ec)
                                       ? models::open_model_files({request.model, request.low_noise, request.config}).source.config
                                       : preset_config(request.model);
  if (config_out) *config_out = config;
  return models::job_geometry(config, request.job);
}

std::string describe_experts(const arch::ModelConfig& config, const partition::Plan& plan) {
  if (config.experts != 2 || !plan.experts) return "";
  const partition::ExpertPlan& e = *plan.experts;
  uint64_t streamed = 0;
  for (const partition::RankPlan& r : plan.ranks) streamed = std::max(streamed, r.streamed_bytes());
  std::string held;
  switch (e.strategy) {
    case partition::ExpertStrategy::swap:
      held = fmt::format("one expert's blocks at a time on every rank, the other's loaded in their place twice per job "
                         "({} each; a group renders one job at a time)",
                         format_seconds(e.swap_seconds));
      break;
    case partition::ExpertStrategy::phases: {
      int high_groups = 0;
      for (const partition::RankPlan& r : plan.ranks)
        if (r.expert == runtime::expert_name(runtime::Expert::high_noise) && r.stage == 0 && r.share == 0) ++high_groups;
      held = fmt::format("the experts in phases: the high-noise expert on {} group(s), the low-noise one on {}, jobs "
                         "moving on at the switch",
                         high_groups, plan.group_count() - high_groups);
      break;
    }
    case partition::ExpertStrategy::both:
      held = fmt::format("both experts' blocks on every rank{}",
                         streamed ? fmt::format(" ({} of the two streamed per step)", format_bytes(streamed)) : ", resident");
      break;
  }
  std::string other;
  if (e.alternative_job_seconds)
    other = fmt::format("; the best other way would take {} per job", format_job_seconds(*e.alternative_job_seconds));
  return fmt::format("{}; {} {} steps run the high-noise expert (t >= {:g}), the last {} the low-noise one{}", held,
                     config.sampling.sampler, e.high_steps, config.sampling.boundary * 1000.0, e.low_steps, other);
}

JobPlan plan_job(const PlanRequest& request) {
  JobPlan out;
  std::optional<models::OpenedModel> source;
  std::error_code ec;
  if (std::filesystem::exists(request.model, ec)) {
    if (request.weights)
      fail("--weights {}: {} is a checkpoint, whose weights are read from the file (--weights is for presets)",
           *request.weights, request.model);
    source = models::open_model_files({request.model, request.low_noise, request.config});
    out.config = source->config();
    out.model = source->describe();
  } else {
    const auto names = arch::preset_names();
    if (std::find(names.begin(), names.end(), request.model) == names.end())
      fail("model '{}' is neither a file nor a preset (presets: {})", request.model, fmt::join(names, ", "));
    if (request.config) fail("--config {}: a preset has its own config; --config is for checkpoints", *request.config);
    if (request.low_noise) fail("--low-noise {}: a preset names its experts itself; --low-noise is for checkpoints", *request.low_noise);
    out.config = preset_config(request.model);
    out.model = fmt::format("{} preset{}, {} weights", request.model, out.config.experts == 2 ? " (two experts)" : "",
                            request.weights.value_or("bf16"));
  }
  out.job = models::job_geometry(out.config, request.job);
  if (source) {
    out.planned = plan_model(out.config, *source->network, source->stored_weights(), out.job, request.devices);
  } else {
    const std::unique_ptr<runtime::Model> network = models::make_network(out.config);
    const quant::ConversionTarget target = quant::ConversionTarget::parse(request.weights.value_or("bf16"));
    arch::ModelConfig expert = out.config;
    expert.experts = 1;
    models::FindStoredWeight weights = models::converted_weights(expert, target);
    if (out.config.experts == 2) weights = models::expert_pair_weights(weights, weights);
    out.planned = plan_model(out.config, *network, weights, out.job, request.devices);
  }
  return out;
}

}  // namespace ditrun::launcher

namespace ditrun::launcher {

DeviceChoice run_device_choice(const DeviceOptions& devices, const BackendOptions& backend, int ranks) {
  DeviceChoice choice = devices.choice();
  if (backend.kind() == BackendKind::cpu) {
    choice.cpu_backend = true;
    choice.cpu_ranks = ranks;
    choice.cpu_device_memory_bytes = backend.device_memory_bytes();
    return choice;
  }
  choice.gpu_ranks = ranks;
  choice.cuda_device = std::max(backend.cuda_device, 0);
  if (backend.device_memory_bytes() && choice.allocation.empty()) {
    // --device-memory caps every rank's GPU, as --allocation would name them.
    const std::string size = format_bytes_exact(backend.device_memory_bytes());
    for (int r = 0; r < ranks; ++r)
      choice.allocation += fmt::format("cuda:{},{};", ranks == 1 ? choice.cuda_device : r, size);
    choice.allocation += "cpu,*";
  }
  choice.gpu_activation_bytes = backend.resolved_precision() == runtime::Precision::F32 ? 4 : 2;
  return choice;
}

void adopt_plan_device(const partition::RankPlan& rank, BackendOptions& backend, bool single_process,
                       std::string_view what) {
  const bool cpu_plan = rank.device.starts_with("cpu");
  if (!cpu_plan && !rank.device.starts_with("cuda:"))
    fail("{}: rank {} runs on '{}', which is neither cpu nor cuda:N", what, rank.rank, rank.device);
  if (!cpu_plan && backend.backend != "cpu")
    if (const auto why = cuda_unavailable())
      fail("{}: rank {} runs on {}, but this machine cannot run CUDA: {}", what, rank.rank, rank.device, *why);
  if (backend.backend == "auto") backend.backend = cpu_plan ? "cpu" : "cuda";
  const bool cpu_run = backend.kind() == BackendKind::cpu;
  if (cpu_plan != cpu_run)
    fail("{}: rank {} runs on {}, but this run computes on the {} backend (--backend {})", what, rank.rank,
         rank.device, cpu_run ? "CPU" : "CUDA", backend.backend);
  if (!backend.device_memory.empty())
    fail("--device-memory and --plan both set the device budget; the plan's is {} (budget_bytes)",
         format_bytes(rank.budget_bytes));
  backend.device_memory = format_bytes_exact(rank.budget_bytes);
  if (!cpu_plan && single_process && backend.cuda_device < 0) {
    int index = -1;
    const std::string_view digits = std::string_view(rank.device).substr(5);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec != std::errc() || end != digits.data() + digits.size() || index < 0)
      fail("{}: rank {} runs on '{}', which is not cuda:N", what, rank.rank, rank.device);
    backend.cuda_device = index;
  }
}

}  // namespace ditrun::launcher
