#include "partition/solver.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "partition/group_solver.h"
#include "partition/refusal.h"
#include "runtime/core/units.h"
#include "runtime/core/error.h"

namespace ditrun::partition {

namespace {

using namespace detail;

bool nearly_less(double a, double b) { return a < b && (b - a) > 1e-12 * std::max(std::abs(a), std::abs(b)); }

struct Choice {
  std::vector<size_t> sequences;  // indices into the sequence list, one per group
  std::vector<GroupSolution> groups;
  double step = 0;       // slowest group
  double amortized = 0;  // 1 / sum 1/T
  size_t ranks = 0;
  uint64_t pinned = 0;
};

// Better by the objective's time, then fewer ranks, then fewer pinned bytes.
bool better(const Choice& a, const Choice& b, Objective objective) {
  const double ta = objective == Objective::latency ? a.step : a.amortized;
  const double tb = objective == Objective::latency ? b.step : b.amortized;
  if (nearly_less(ta, tb)) return true;
  if (nearly_less(tb, ta)) return false;
  if (a.ranks != b.ranks) return a.ranks < b.ranks;
  return a.pinned < b.pinned;
}

Plan cpu_plan(const SolverInput& in) {
  const ModelCost& model = in.model;
  const uint64_t needed = model.weight_bytes() + model.step_activation_bytes;
  if (needed > in.host.budget_bytes)
    fail("plan does not fit: no GPU has a budget, so everything runs resident on {}, which needs {} (weights {} + "
         "activations {}) and has a budget of {} ({} short)",
         in.host.name, format_bytes(needed), format_bytes(model.weight_bytes()), format_bytes(model.step_activation_bytes),
         format_bytes(in.host.budget_bytes), format_bytes(needed - in.host.budget_bytes));
  Plan plan;
  plan.mode = PlanMode::single;
  plan.objective = in.objective;
  plan.micro_batches = model.micro_batches;
  plan.steps = model.steps;
  plan.host_budget_bytes = in.host.budget_bytes;
  RankPlan rank;
  rank.device = in.host.name;
  rank.budget_bytes = in.host.budget_bytes;
  rank.activation_bytes = model.step_activation_bytes;
  rank.peak_bytes = needed;
  for (const auto& b : model.blocks) {
    rank.blocks.push_back({b.name, Home::resident, b.weight_bytes});
    rank.predicted.compute_seconds += compute_seconds(b, in.host.throughput, in.host.name);
  }
  rank.predicted.stage_seconds = rank.predicted.compute_seconds;
  plan.predicted.step_seconds = plan.predicted.throughput_step_seconds = rank.predicted.stage_seconds;
  if (model.steps > 0) plan.predicted.job_seconds = plan.predicted.seconds_per_job = model.steps * plan.predicted.step_seconds;
  plan.ranks.push_back(std::move(rank));
  return plan;
}

// The chosen groups as ranks: devices of each class in order, group by group, stage by stage.
Plan build_plan(const SolverInput& in, const std::vector<DeviceClass>& classes,
                const std::vector<std::vector<int>>& sequences, const Choice& best) {
  const ModelCost& model = in.model;
  Plan plan;
  plan.objective = in.objective;
  plan.micro_batches = model.micro_batches;
  plan.steps = model.steps;
  plan.host_budget_bytes = in.host.budget_bytes;
  std::vector<size_t> next_member(classes.size(), 0);
  bool multi_stage = false;
  for (size_t g = 0; g < best.groups.size(); ++g) {
    const std::vector<int>& seq = sequences[best.sequences[g]];
    const GroupSolution& sol = best.groups[g];
    const SequenceSolver stages(model, classes, seq);
    multi_stage = multi_stage || seq.size() > 1;
    for (size_t s = 0; s < seq.size(); ++s) {
      const DeviceClass& c = classes[seq[s]];
      const ComputeDevice& device = in.devices[c.members[next_member[seq[s]]++]];
      const size_t first = sol.cuts[s], last = sol.cuts[s + 1];
      const std::vector<bool> streamed = c.fits->streamed_blocks(first, last);
      RankPlan r;
      r.rank = static_cast<int>(plan.ranks.size());
      r.device = device.name;
      r.group = static_cast<int>(g);
      r.stage = static_cast<int>(s);
      r.budget_bytes = device.budget_bytes;
      r.activation_bytes = model.step_activation_bytes;
      for (size_t b = first; b < last; ++b) {
        const BlockCost& block = model.blocks[b];
        r.blocks.push_back({block.name, streamed[b - first] ? Home::streamed : Home::resident, block.weight_bytes});
        if (streamed[b - first]) r.slot_bytes = std::max(r.slot_bytes, block.weight_bytes);
        r.predicted.compute_seconds += compute_seconds(block, c.throughput, device.name);
      }
      r.prefetch_depth = r.slot_bytes > 0 ? in.prefetch_slots : 0;
      r.peak_bytes = r.resident_bytes() + static_cast<uint64_t>(r.prefetch_depth) * r.slot_bytes + r.activation_bytes;
      r.predicted.transfer_seconds = host_to_device_seconds(r.streamed_bytes(), c.throughput);
      r.predicted.exposed_transfer_seconds = std::max(0.0, r.predicted.transfer_seconds - r.predicted.compute_seconds);
      r.predicted.boundary_seconds = stages.boundary_seconds(s, last);
      r.predicted.stage_seconds = stages.stage_seconds(s, first, last);
      plan.host_pinned_bytes += r.streamed_bytes();
      plan.ranks.push_back(std::move(r));
    }
  }
  if (best.groups.size() == 1) plan.mode = multi_stage ? PlanMode::pipeline : plan.host_pinned_bytes > 0 ? PlanMode::offload : PlanMode::single;
  else plan.mode = multi_stage ? PlanMode::replicas_of_pipelines : PlanMode::replicas;
  plan.predicted.step_seconds = best.step;
  plan.predicted.throughput_step_seconds = best.amortized;
  if (model.steps > 0) {
    plan.predicted.job_seconds = model.steps * plan.predicted.step_seconds;
    plan.predicted.seconds_per_job = model.steps * plan.predicted.throughput_step_seconds;
  }
  return plan;
}

}  // namespace

SolverInput make_solver_input(ModelCost model, const DeviceInventory& inventory, const Budgets& budgets,
                              Objective objective) {
  SolverInput in;
  in.model = std::move(model);
  in.objective = objective;
  for (const auto& b : budgets.gpus) {
    const DeviceSpec* d = inventory.find(b.device);
    if (!d) fail("budget names {}, which is not in the inventory ({})", b.device, inventory.names());
    in.devices.push_back({d->name, d->throughput, b.bytes});
  }
  in.host = {inventory.host().name, inventory.host().throughput, budgets.host_bytes};
  return in;
}

uint64_t min_pinned_bytes(const std::vector<uint64_t>& weights, const std::vector<uint64_t>& gpu_budgets,
                          uint64_t activation_bytes, int slots) {
  ModelCost model;  // bytes only: zero compute, zero activations between stages
  for (size_t i = 0; i < weights.size(); ++i) model.blocks.push_back({fmt::format("b{}", i), weights[i], 0, 0, "bf16", 0});
  Throughput unit;  // any finite rates: only which ranges fit matters here
  unit.host_to_device_bytes_per_s = unit.device_to_device_bytes_per_s = 1;
  std::vector<ComputeDevice> gpus;
  for (uint64_t budget : gpu_budgets) gpus.push_back({"gpu", unit, budget});
  auto classes = make_classes(weights, gpus, activation_bytes, slots);
  for (auto& c : classes) c.tabulate(std::vector<double>(weights.size(), 0.0));
  bool complete = true;
  uint64_t best = kNoFit;
  for (const auto& seq : class_sequences(classes, weights.size(), complete))
    best = std::min(best, SequenceSolver(model, classes, seq).min_pinned(std::numeric_limits<double>::infinity(), nullptr));
  return best;
}

std::string describe(const Layout& layout) {
  const std::string groups = layout.groups > 0 ? fmt::format("{} group(s)", layout.groups) : "any number of groups";
  const std::string stages = layout.stages > 0 ? fmt::format("{} stage(s) each", layout.stages) : "any number of stages";
  return groups + " of " + stages + (layout.ranks > 0 ? fmt::format(", {} rank(s) in all", layout.ranks) : "");
}

Plan solve(const SolverInput& in) {
  const ModelCost& model = in.model;
  validate(model);
  if (in.prefetch_slots < 2) fail("solver: prefetch_slots {} is below 2 (copies could not overlap compute)", in.prefetch_slots);
  const bool any_gpu = std::any_of(in.devices.begin(), in.devices.end(), [](const ComputeDevice& g) { return g.budget_bytes > 0; });
  if (!any_gpu) {
    if (in.layout.groups > 1 || in.layout.stages > 1 || in.layout.ranks > 1)
      fail("no plan with {} fits: no device has a budget, so one rank runs everything on {}", describe(in.layout),
           in.host.name);
    Plan plan = cpu_plan(in);
    validate(plan);
    return plan;
  }

  std::vector<uint64_t> weights;
  for (const auto& b : model.blocks) weights.push_back(b.weight_bytes);
  auto classes = make_classes(weights, in.devices, model.step_activation_bytes, in.prefetch_slots);
  bool exact = true;
  for (auto& c : classes) {
    const std::string& name = in.devices[c.members.front()].name;
    std::vector<double> compute;
    for (const auto& b : model.blocks) compute.push_back(compute_seconds(b, c.throughput, name));
    c.tabulate(compute);
    exact = exact && c.fits->exact();
  }
  size_t gpu_count = 0;
  for (const auto& c : classes) gpu_count += c.members.size();
  bool complete = true;
  const auto sequences = class_sequences(classes, std::min(gpu_count, model.blocks.size()), complete);
  exact = exact && complete;

  // Group solutions by (sequence, number of groups): the host budget is split evenly.
  // The solution without a host limit serves every share it fits in, which is the usual case.
  std::vector<std::optional<GroupSolution>> unlimited(sequences.size());
  std::vector<std::vector<std::optional<GroupSolution>>> memo(sequences.size(), std::vector<std::optional<GroupSolution>>(gpu_count + 1));
  auto group = [&](size_t seq, size_t groups) -> const GroupSolution& {
    auto& free = unlimited[seq];
    if (!free) free = SequenceSolver(model, classes, sequences[seq]).solve(kNoFit, model.micro_batches);
    const uint64_t share = in.host.budget_bytes / groups;
    if (!free->feasible || free->pinned <= share) return *free;
    auto& slot = memo[seq][groups];
    if (!slot) slot = SequenceSolver(model, classes, sequences[seq]).solve(share, model.micro_batches);
    return *slot;
  };
  auto evaluate = [&](const std::vector<size_t>& chosen) -> std::optional<Choice> {
    Choice c;
    c.sequences = chosen;
    double rate = 0;
    bool instant = false;
    for (size_t seq : chosen) {
      const GroupSolution& g = group(seq, chosen.size());
      if (!g.feasible) return std::nullopt;
      c.groups.push_back(g);
      c.step = std::max(c.step, g.step);
      c.ranks += sequences[seq].size();
      c.pinned += g.pinned;
      if (g.max_stage > 0) rate += 1 / g.max_stage;  // jobs in flight keep every stage busy
      else instant = true;
    }
    c.amortized = instant ? 0 : 1 / rate;
    return c;
  };

  const Layout& layout = in.layout;
  auto allowed = [&](const std::vector<size_t>& chosen) {
    if (layout.groups > 0 && chosen.size() != size_t(layout.groups)) return false;
    size_t ranks = 0;
    for (size_t s : chosen) ranks += sequences[s].size();
    if (layout.ranks > 0 && ranks != size_t(layout.ranks)) return false;
    for (size_t s : chosen)
      if (layout.stages > 0 && sequences[s].size() != size_t(layout.stages)) return false;
    return true;
  };
  std::optional<Choice> best;
  auto consider = [&](const std::vector<size_t>& chosen) {
    if (!allowed(chosen)) return;
    if (auto c = evaluate(chosen); c && (!best || better(*c, *best, in.objective))) best = std::move(c);
  };
  // One group: every plan the latency objective may pick, and the start of every grouping.
  for (size_t s = 0; s < sequences.size(); ++s) consider({s});
  if (in.objective == Objective::throughput || layout.groups > 1 || layout.ranks > 1) {
    // Multisets of sequences whose class usage fits the GPUs: every way to form groups.
    std::vector<long> left;
    for (const auto& c : classes) left.push_back(static_cast<long>(c.members.size()));
    std::vector<size_t> chosen;
    size_t visited = 0;
    auto pick = [&](auto&& self, size_t from) -> void {
      for (size_t s = from; s < sequences.size(); ++s) {
        bool fits = true;
        for (int c : sequences[s]) fits = --left[c] >= 0 && fits;
        if (fits) {
          chosen.push_back(s);
          if (++visited > kMaxGroupings) {
            exact = false;
          } else {
            if (chosen.size() >= 2) consider(chosen);
            self(self, s);
          }
          chosen.pop_back();
        }
        for (int c : sequences[s]) ++left[c];
      }
    };
    pick(pick, 0);
  }
  if (!best && !layout.free()) {
    // Say whether the shape or the memory is the problem.
    SolverInput free_input = in;
    free_input.layout = {};
    std::string without;
    try {
      without = fmt::format("; without that constraint it fits as {}", summarize(solve(free_input)));
    } catch (const Error& e) {
      without = fmt::format("; nor without it: {}", e.what());
    }
    fail("no plan with {} fits{}", describe(layout), without);
  }
  if (!best) refuse_plan(in);

  Plan plan = build_plan(in, classes, sequences, *best);
  plan.exact = exact;
  validate(plan);  // a broken plan here is a solver bug: better an error than a crash later
  return plan;
}

}  // namespace ditrun::partition
