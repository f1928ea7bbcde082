// The solver against exhaustive search on small random instances, under the same model
// (solver.h): every device order, grouping, split and resident/streamed choice is tried here
// with no shortcuts, so a gap in the solver's reasoning shows up as a mismatch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>

#include "partition/solver.h"
#include "partition/stage_fit.h"
#include "runtime/core/units.h"
#include "runtime/core/error.h"

namespace ditrun::partition {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Best step time of one group on the GPUs `order` (pipeline stages in that order), pinning at
// most `host` bytes; infinity if nothing fits.
double brute_group(const SolverInput& in, const std::vector<size_t>& order, uint64_t host) {
  const auto& blocks = in.model.blocks;
  const size_t n = blocks.size(), stages = order.size();
  if (stages > n) return kInf;
  double best = kInf;
  for (uint32_t cut_mask = 0; cut_mask < (1u << (n - 1)); ++cut_mask) {  // bit g: a cut after block g
    if (static_cast<size_t>(__builtin_popcount(cut_mask)) != stages - 1) continue;
    std::vector<size_t> bounds{0};
    for (size_t g = 0; g + 1 < n; ++g)
      if (cut_mask >> g & 1) bounds.push_back(g + 1);
    bounds.push_back(n);
    for (uint32_t home = 0; home < (1u << n); ++home) {  // bit b: block b streams
      double slowest = 0;
      uint64_t pinned = 0;
      bool ok = true;
      for (size_t s = 0; s < stages && ok; ++s) {
        const ComputeDevice& d = in.devices[order[s]];
        uint64_t resident = 0, streamed = 0, slot = 0;
        double compute = 0;
        for (size_t b = bounds[s]; b < bounds[s + 1]; ++b) {
          if (home >> b & 1) {
            streamed += blocks[b].weight_bytes;
            slot = std::max(slot, blocks[b].weight_bytes);
          } else {
            resident += blocks[b].weight_bytes;
          }
          compute += compute_seconds(blocks[b], d.throughput, d.name);
        }
        if (resident + static_cast<uint64_t>(in.prefetch_slots) * slot + in.model.step_activation_bytes > d.budget_bytes)
          ok = false;
        const double boundary =
            stages == 1 ? 0
                        : device_to_device_seconds(blocks[bounds[s + 1] - 1].activation_bytes, d.throughput,
                                                   in.devices[order[(s + 1) % stages]].throughput);
        slowest = std::max(slowest, std::max(compute, host_to_device_seconds(streamed, d.throughput)) + boundary);
        pinned += streamed;
      }
      if (!ok || pinned > host) continue;
      const double m = in.model.micro_batches;
      best = std::min(best, (m + static_cast<double>(stages) - 1) / m * slowest);
    }
  }
  return best;
}

// Every collection of disjoint ordered GPU sequences (GPUs may stay unused): each GPU in turn
// is left out, starts a new group, or is inserted anywhere into an existing group.
void groupings(const std::vector<size_t>& gpus, size_t next, std::vector<std::vector<size_t>>& groups,
               const std::function<void(const std::vector<std::vector<size_t>>&)>& visit) {
  if (next == gpus.size()) {
    if (!groups.empty()) visit(groups);
    return;
  }
  groupings(gpus, next + 1, groups, visit);
  groups.push_back({gpus[next]});
  groupings(gpus, next + 1, groups, visit);
  groups.pop_back();
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t pos = 0; pos <= groups[g].size(); ++pos) {
      groups[g].insert(groups[g].begin() + static_cast<std::ptrdiff_t>(pos), gpus[next]);
      groupings(gpus, next + 1, groups, visit);
      groups[g].erase(groups[g].begin() + static_cast<std::ptrdiff_t>(pos));
    }
}

// The objective's optimum: latency = best single group with all the host RAM; throughput =
// smallest 1 / sum(rate) over groupings, each group pinning at most host / groups.
double brute_force(const SolverInput& in) {
  std::vector<size_t> usable;
  for (size_t g = 0; g < in.devices.size(); ++g)
    if (in.devices[g].budget_bytes > 0) usable.push_back(g);
  std::map<std::pair<std::vector<size_t>, size_t>, double> memo;
  auto group = [&](const std::vector<size_t>& order, size_t count) {
    auto key = std::make_pair(order, count);
    auto it = memo.find(key);
    if (it == memo.end()) it = memo.emplace(key, brute_group(in, order, in.host.budget_bytes / count)).first;
    return it->second;
  };
  double best = kInf;
  std::vector<std::vector<size_t>> groups;
  groupings(usable, 0, groups, [&](const std::vector<std::vector<size_t>>& gs) {
    if (in.objective == Objective::latency) {
      if (gs.size() == 1) best = std::min(best, group(gs[0], 1));
      return;
    }
    double rate = 0;
    for (const auto& g : gs) {
      const double t = group(g, gs.size());
      if (t == kInf) return;
      // For a fixed device order, T = (M + S - 1) / M x slowest stage, so the best T has the
      // best slowest stage, whose inverse is the group's rate with jobs in flight.
      const double m = in.model.micro_batches, s = double(g.size());
      rate += (m + s - 1) / m / t;
    }
    best = std::min(best, 1 / rate);
  });
  return best;
}

const ComputeDevice& device_named(const SolverInput& in, const std::string& name) {
  for (const auto& g : in.devices)
    if (g.name == name) return g;
  throw std::runtime_error("plan names an unknown device " + name);
}

// Recomputes a plan's memory and times from its placement alone and checks the plan's claims.
void check_plan_claims(const SolverInput& in, const Plan& plan) {
  validate(plan);
  const int groups = plan.group_count();
  std::vector<double> slowest(groups, 0);
  std::vector<int> stages(groups, 0);
  std::vector<uint64_t> pinned(groups, 0);
  std::map<std::string, const BlockCost*> by_name;
  for (const auto& b : in.model.blocks) by_name[b.name] = &b;
  for (size_t i = 0; i < plan.ranks.size(); ++i) {
    const RankPlan& r = plan.ranks[i];
    const ComputeDevice& d = device_named(in, r.device);
    ASSERT_EQ(r.budget_bytes, d.budget_bytes);
    uint64_t resident = 0, streamed = 0, slot = 0;
    double compute = 0;
    for (const auto& b : r.blocks) {
      ASSERT_EQ(b.bytes, by_name.at(b.name)->weight_bytes);
      (b.home == Home::streamed ? streamed : resident) += b.bytes;
      if (b.home == Home::streamed) slot = std::max(slot, b.bytes);
      compute += compute_seconds(*by_name.at(b.name), d.throughput, d.name);
    }
    EXPECT_LE(resident + static_cast<uint64_t>(in.prefetch_slots) * slot + in.model.step_activation_bytes, d.budget_bytes);
    EXPECT_LE(r.peak_bytes, r.budget_bytes);
    const bool last_stage = i + 1 == plan.ranks.size() || plan.ranks[i + 1].group != r.group;
    const RankPlan& next = last_stage ? plan.ranks[i - r.stage] : plan.ranks[i + 1];
    const bool alone = last_stage && r.stage == 0;
    const double boundary = alone ? 0
                                  : device_to_device_seconds(by_name.at(r.blocks.back().name)->activation_bytes,
                                                             d.throughput, device_named(in, next.device).throughput);
    const double t = std::max(compute, host_to_device_seconds(streamed, d.throughput)) + boundary;
    EXPECT_NEAR(t, r.predicted.stage_seconds, 1e-9 * t);
    slowest[r.group] = std::max(slowest[r.group], t);
    stages[r.group] = r.stage + 1;
    pinned[r.group] += streamed;
  }
  double rate = 0, step = 0;
  for (int g = 0; g < groups; ++g) {
    EXPECT_LE(pinned[g], in.host.budget_bytes / groups) << "group " << g << " pins more than its share";
    const double m = plan.micro_batches;
    const double t = (m + stages[g] - 1) / m * slowest[g];
    rate += 1 / slowest[g];  // independent jobs in flight keep every stage busy
    step = std::max(step, t);
  }
  EXPECT_NEAR(plan.predicted.step_seconds, step, 1e-9 * step);
  EXPECT_NEAR(plan.predicted.throughput_step_seconds, 1 / rate, 1e-9 / rate);
}

Throughput random_rates(std::mt19937& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  Throughput t;
  t.gemm_flops = {{"bf16", (50 + 450 * u(rng)) * 1e12}, {"fp8", (100 + 900 * u(rng)) * 1e12}};
  t.attention_flops = (20 + 180 * u(rng)) * 1e12;
  t.memory_bytes_per_s = (0.5 + 2.5 * u(rng)) * 1e12;
  t.host_to_device_bytes_per_s = (2 + 48 * u(rng)) * 1e9;
  t.device_to_device_bytes_per_s = (1 + 99 * u(rng)) * 1e9;
  return t;
}

SolverInput random_instance(std::mt19937& rng, size_t max_blocks, size_t max_gpus) {
  std::uniform_real_distribution<double> u(0, 1);
  auto pick = [&](size_t lo, size_t hi) { return std::uniform_int_distribution<size_t>(lo, hi)(rng); };
  SolverInput in;
  const size_t n = pick(1, max_blocks);
  const bool few_sizes = u(rng) < 0.5;  // DiT-like: a couple of distinct block sizes
  const uint64_t size_a = pick(10, 100) * MiB, size_b = pick(10, 100) * MiB;
  uint64_t total = 0;
  for (size_t b = 0; b < n; ++b) {
    BlockCost block;
    block.name = "block" + std::to_string(b);
    block.weight_bytes = few_sizes ? (u(rng) < 0.7 ? size_a : size_b) : pick(1, 100) * MiB + pick(0, 1000);
    block.flops = (0.1 + 10 * u(rng)) * 1e12;
    block.attention_flops = u(rng) < 0.5 ? 0 : 2 * u(rng) * 1e12;
    block.activation_bytes = pick(1, 50) * MiB;
    block.weight_class = u(rng) < 0.7 ? "bf16" : "fp8";
    total += block.weight_bytes;
    in.model.blocks.push_back(std::move(block));
  }
  in.model.step_activation_bytes = pick(0, 20) * MiB;
  in.model.micro_batches = static_cast<int>(pick(1, 4));
  in.prefetch_slots = u(rng) < 0.8 ? 2 : 3;
  const size_t gpus = pick(1, max_gpus);
  const bool identical = u(rng) < 0.4;
  const Throughput shared = random_rates(rng);
  const uint64_t shared_budget = in.model.step_activation_bytes + static_cast<uint64_t>((0.2 + 1.0 * u(rng)) * total);
  for (size_t g = 0; g < gpus; ++g) {
    ComputeDevice d;
    d.name = "cuda:" + std::to_string(g);
    d.throughput = identical ? shared : random_rates(rng);
    d.budget_bytes = identical ? shared_budget
                               : in.model.step_activation_bytes + static_cast<uint64_t>((0.2 + 1.0 * u(rng)) * total);
    in.devices.push_back(std::move(d));
  }
  const double host_draw = u(rng);
  in.host.name = "cpu";
  in.host.budget_bytes = host_draw < 0.25 ? 0 : host_draw < 0.5 ? 1000 * total : static_cast<uint64_t>(u(rng) * total);
  in.objective = u(rng) < 0.5 ? Objective::latency : Objective::throughput;
  return in;
}

TEST(SolverBruteForce, OptimalOnRandomSmallInstances) {
  std::mt19937 rng(20240611);
  int feasible = 0, refused = 0;
  std::map<PlanMode, int> modes;
  for (int trial = 0; trial < 300; ++trial) {
    const SolverInput in = random_instance(rng, 8, 3);
    SCOPED_TRACE(::testing::Message() << "trial " << trial << ", " << in.model.blocks.size() << " blocks, "
                                      << in.devices.size() << " GPUs, " << to_string(in.objective));
    const double expected = brute_force(in);
    try {
      const Plan plan = solve(in);
      ASSERT_TRUE(std::isfinite(expected)) << "solver found a plan brute force says cannot exist";
      const double got = in.objective == Objective::latency ? plan.predicted.step_seconds
                                                            : plan.predicted.throughput_step_seconds;
      EXPECT_NEAR(got, expected, 1e-9 * expected);
      EXPECT_TRUE(plan.exact);
      check_plan_claims(in, plan);
      ++feasible;
      ++modes[plan.mode];
    } catch (const Error& e) {
      ASSERT_FALSE(std::isfinite(expected)) << "solver refused a feasible instance: " << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("plan does not fit: ", 0), 0u) << e.what();
      ++refused;
    }
  }
  // The generator must exercise both outcomes and every mode, or the test proves little.
  EXPECT_GT(feasible, 100);
  EXPECT_GT(refused, 10);
  for (PlanMode m : {PlanMode::single, PlanMode::offload, PlanMode::pipeline, PlanMode::replicas,
                     PlanMode::replicas_of_pipelines})
    EXPECT_GT(modes[m], 0) << to_string(m);
}

// Larger instances (no brute force): every plan keeps every budget and its own claims.
TEST(SolverBruteForce, BudgetsNeverExceededOnLargerInstances) {
  std::mt19937 rng(7);
  int feasible = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const SolverInput in = random_instance(rng, 40, 4);
    SCOPED_TRACE(::testing::Message() << "trial " << trial);
    try {
      check_plan_claims(in, solve(in));
      ++feasible;
    } catch (const Error&) {
      EXPECT_GT(min_pinned_bytes([&] {
        std::vector<uint64_t> w;
        for (const auto& b : in.model.blocks) w.push_back(b.weight_bytes);
        return w;
      }(), [&] {
        std::vector<uint64_t> b;
        for (const auto& g : in.devices) b.push_back(g.budget_bytes);
        return b;
      }(), in.model.step_activation_bytes, in.prefetch_slots), in.host.budget_bytes);
    }
  }
  EXPECT_GT(feasible, 20);
}

// StageFits alone: exact against all subsets while the sums list is small, and within its
// stated bound once it trims (20 blocks of distinct sizes).
TEST(StageFits, MatchesExhaustiveSearchAndTrimsWithinBound) {
  std::mt19937 rng(99);
  for (int trial = 0; trial < 40; ++trial) {
    const size_t n = trial < 30 ? 1 + rng() % 10 : 20;
    std::vector<uint64_t> w(n);
    uint64_t total = 0;
    for (auto& x : w) total += (x = 1 + rng() % 1'000'000);
    const uint64_t capacity = total * (20 + rng() % 80) / 100;
    const int slots = 2;
    const StageFits fits(w, capacity, slots);
    uint64_t best = UINT64_MAX;
    for (uint32_t mask = 0; mask < (1u << n); ++mask) {
      uint64_t resident = 0, streamed = 0, slot = 0;
      for (size_t b = 0; b < n; ++b) {
        if (mask >> b & 1) {
          streamed += w[b];
          slot = std::max(slot, w[b]);
        } else {
          resident += w[b];
        }
      }
      if (resident + slots * slot <= capacity) best = std::min(best, streamed);
    }
    const RangeFit& fit = fits.at(0, n);
    ASSERT_EQ(fit.feasible, best != UINT64_MAX) << trial;
    if (!fit.feasible) continue;
    if (fits.exact()) {
      EXPECT_EQ(fit.streamed_bytes, best) << trial;
    } else {
      EXPECT_GE(fit.streamed_bytes, best);
      EXPECT_LE(fit.streamed_bytes, best + n * (capacity / kExactSums)) << trial;
    }
    // The residency it reports is real: it streams what it says and fits.
    const std::vector<bool> streamed = fits.streamed_blocks(0, n);
    uint64_t resident = 0, s = 0, slot = 0;
    for (size_t b = 0; b < n; ++b) {
      if (streamed[b]) {
        s += w[b];
        slot = std::max(slot, w[b]);
      } else {
        resident += w[b];
      }
    }
    EXPECT_EQ(s, fit.streamed_bytes) << trial;
    EXPECT_LE(resident + slots * slot, capacity) << trial;
  }
}

TEST(StageFits, SpreadsEqualStreamedBlocksEvenly) {
  const StageFits fits(std::vector<uint64_t>(10, 100), 800, 2);  // 6 resident + 2 slots: 4 stream
  ASSERT_EQ(fits.at(0, 10).streamed_bytes, 400u);
  const std::vector<bool> streamed = fits.streamed_blocks(0, 10);
  const std::vector<bool> expected{false, true, false, true, false, false, true, false, true, false};
  EXPECT_EQ(streamed, expected);
}

}  // namespace
}  // namespace ditrun::partition
