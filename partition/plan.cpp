#include "partition/plan.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "runtime/core/units.h"
#include "runtime/core/error.h"

namespace ditrun::partition {

namespace {
constexpr std::string_view mode_names[] = {"single", "offload", "pipeline", "replicas", "replicas_of_pipelines"};
}

std::string_view to_string(PlanMode mode) { return mode_names[static_cast<int>(mode)]; }
std::string_view to_string(Objective objective) { return objective == Objective::latency ? "latency" : "throughput"; }
std::string_view to_string(Home home) { return home == Home::resident ? "resident" : "streamed"; }

Objective parse_objective(std::string_view text) {
  if (text == "latency") return Objective::latency;
  if (text == "throughput") return Objective::throughput;
  fail("objective '{}' is not latency or throughput", text);
}

uint64_t RankPlan::resident_bytes() const {
  uint64_t total = 0;
  for (const auto& b : blocks) total += b.home == Home::resident ? b.bytes : 0;
  return total;
}

uint64_t RankPlan::streamed_bytes() const {
  uint64_t total = 0;
  for (const auto& b : blocks) total += b.home == Home::streamed ? b.bytes : 0;
  return total;
}

int Plan::group_count() const { return ranks.empty() ? 0 : ranks.back().group + 1; }

uint64_t Plan::host_share_bytes() const {
  return ranks.empty() ? 0 : host_budget_bytes / uint64_t(group_count() * team_size());
}

namespace {

void check_seconds(double value, std::string_view field) {
  if (!std::isfinite(value) || value < 0) fail("plan: {} {} is not a time in seconds", field, value);
}

}  // namespace

void validate(const Plan& plan) {
  if (plan.ranks.empty()) fail("plan: ranks is empty");
  if (plan.micro_batches < 1) fail("plan: micro_batches {} is below 1", plan.micro_batches);
  if (plan.steps < 0) fail("plan: steps {} is negative", plan.steps);
  if (plan.sequence_parallel < 1) fail("plan: sequence_parallel {} is below 1", plan.sequence_parallel);
  if (plan.cfg_parallel != 1 && plan.cfg_parallel != 2) fail("plan: cfg_parallel {} is not 1 or 2", plan.cfg_parallel);
  if (plan.sequence_ring < 0 || (plan.sequence_ring > 0 && plan.sequence_parallel % plan.sequence_ring != 0))
    fail("plan: sequence_ring {} does not divide sequence_parallel {}", plan.sequence_ring, plan.sequence_parallel);
  size_t positions = 0;
  std::set<std::string> devices;
  std::vector<std::vector<std::string>> group_blocks;
  uint64_t pinned = 0;
  int max_stages = 0;
  for (size_t i = 0; i < plan.ranks.size(); ++i) {
    const RankPlan& r = plan.ranks[i];
    const std::string at = fmt::format("ranks[{}]", i);
    if (r.rank != static_cast<int>(i)) fail("plan: {}.rank is {}, expected {}", at, r.rank, i);
    if (r.device.empty()) fail("plan: {}.device is empty", at);
    if (!devices.insert(r.device).second) fail("plan: {}.device {} is used by an earlier rank", at, r.device);
    if (r.share < 0 || r.share >= plan.team_size())
      fail("plan: {}.share is {}, outside the team of {}", at, r.share, plan.team_size());
    if (r.share > 0) {  // a team member: the stage of the rank before, the same blocks
      const RankPlan& before = plan.ranks[i - 1];
      if (r.share != before.share + 1 || r.group != before.group || r.stage != before.stage)
        fail("plan: {} (share {}) does not follow its team's rank {} (group {} stage {} share {})", at, r.share,
             before.rank, before.group, before.stage, before.share);
      std::vector<std::string> mine, theirs;
      for (const auto& b : r.blocks) mine.push_back(b.name);
      for (const auto& b : before.blocks) theirs.push_back(b.name);
      if (mine != theirs) fail("plan: {} does not hold the blocks of its team's rank {}", at, before.rank);
    } else if (i > 0 && plan.ranks[i - 1].share != plan.team_size() - 1) {
      fail("plan: {} starts a stage before the team of rank {} is complete ({} of {})", at, plan.ranks[i - 1].rank,
           plan.ranks[i - 1].share + 1, plan.team_size());
    }
    if (r.share == 0) ++positions;
    const int group_count = static_cast<int>(group_blocks.size());
    if (r.share > 0) {
      // Checked against its primary above.
    } else if (r.group == group_count) {
      group_blocks.emplace_back();
      if (r.stage != 0) fail("plan: {}.stage is {}, expected 0 (first rank of group {})", at, r.stage, r.group);
    } else if (r.group != group_count - 1) {
      fail("plan: {}.group is {}, expected {} or {}", at, r.group, group_count - 1, group_count);
    } else if (r.stage != plan.ranks[i - 1].stage + 1) {
      fail("plan: {}.stage is {}, expected {}", at, r.stage, plan.ranks[i - 1].stage + 1);
    }
    max_stages = std::max(max_stages, r.stage + 1);
    if (r.blocks.empty()) fail("plan: {}.blocks is empty", at);
    uint64_t largest_streamed = 0;
    for (size_t b = 0; b < r.blocks.size(); ++b) {
      const PlacedBlock& block = r.blocks[b];
      if (block.name.empty()) fail("plan: {}.blocks[{}].name is empty", at, b);
      if (block.home == Home::streamed) largest_streamed = std::max(largest_streamed, block.bytes);
      if (r.share == 0) group_blocks.back().push_back(block.name);
    }
    const bool streams = r.streamed_bytes() > 0 || largest_streamed > 0;
    if (streams && r.prefetch_depth < 2)
      fail("plan: {}.prefetch_depth is {}; streamed blocks need at least 2 slots", at, r.prefetch_depth);
    if (r.slot_bytes < largest_streamed)
      fail("plan: {}.slot_bytes {} is smaller than its largest streamed block ({})", at, format_bytes(r.slot_bytes),
           format_bytes(largest_streamed));
    const uint64_t needed = r.resident_bytes() + static_cast<uint64_t>(r.prefetch_depth) * r.slot_bytes + r.activation_bytes;
    if (r.peak_bytes < needed)
      fail("plan: {}.peak_bytes {} is below resident + slots + activations ({})", at, format_bytes(r.peak_bytes),
           format_bytes(needed));
    if (r.peak_bytes > r.budget_bytes)
      fail("plan: {}.peak_bytes {} exceeds budget_bytes {}", at, format_bytes(r.peak_bytes), format_bytes(r.budget_bytes));
    const RankPrediction& p = r.predicted;
    check_seconds(p.compute_seconds, at + ".predicted.compute_seconds");
    check_seconds(p.transfer_seconds, at + ".predicted.transfer_seconds");
    check_seconds(p.exposed_transfer_seconds, at + ".predicted.exposed_transfer_seconds");
    check_seconds(p.boundary_seconds, at + ".predicted.boundary_seconds");
    check_seconds(p.stage_seconds, at + ".predicted.stage_seconds");
    pinned += r.streamed_bytes();
  }
  for (size_t g = 1; g < group_blocks.size(); ++g)
    if (group_blocks[g] != group_blocks[0]) fail("plan: group {} does not hold the same blocks as group 0", g);
  // Phases: each group one expert, both experts present; otherwise no rank names one.
  const bool phases = plan.experts && plan.experts->strategy == ExpertStrategy::phases;
  bool high = false, low = false;
  for (const RankPlan& r : plan.ranks) {
    const std::string at = fmt::format("ranks[{}]", r.rank);
    if (!phases && !r.expert.empty()) fail("plan: {}.expert is '{}', but the plan's experts strategy is not phases", at, r.expert);
    if (!phases) continue;
    if (r.expert != "high_noise" && r.expert != "low_noise")
      fail("plan: {}.expert is '{}', not high_noise or low_noise (the plan runs experts in phases)", at, r.expert);
    const RankPlan& first = *std::find_if(plan.ranks.begin(), plan.ranks.end(), [&](const RankPlan& o) { return o.group == r.group; });
    if (r.expert != first.expert) fail("plan: {}.expert is '{}', but its group {} runs '{}'", at, r.expert, r.group, first.expert);
    (r.expert == "high_noise" ? high : low) = true;
  }
  if (phases && !(high && low)) fail("plan: experts in phases need a group for each expert");
  std::set<std::string> names(group_blocks[0].begin(), group_blocks[0].end());
  if (names.size() != group_blocks[0].size()) fail("plan: group 0 holds a block twice");
  if (plan.host_pinned_bytes != pinned)
    fail("plan: host_pinned_bytes {} is not the sum of streamed blocks ({})", plan.host_pinned_bytes, pinned);
  if (plan.host_pinned_bytes > plan.host_budget_bytes)
    fail("plan: host_pinned_bytes {} exceeds host_budget_bytes {}", format_bytes(plan.host_pinned_bytes),
         format_bytes(plan.host_budget_bytes));

  const int groups = static_cast<int>(group_blocks.size());
  const bool streams = pinned > 0;
  bool shape_ok = false;
  switch (plan.mode) {
    case PlanMode::single: shape_ok = positions == 1 && !streams; break;
    case PlanMode::offload: shape_ok = positions == 1 && streams; break;
    case PlanMode::pipeline: shape_ok = groups == 1 && positions >= 2; break;
    case PlanMode::replicas: shape_ok = groups >= 2 && max_stages == 1; break;
    case PlanMode::replicas_of_pipelines: shape_ok = groups >= 2 && max_stages >= 2; break;
  }
  if (!shape_ok)
    fail("plan: mode '{}' does not match {} rank(s){} in {} group(s){}", to_string(plan.mode), positions,
         plan.team_size() > 1 ? fmt::format(" (teams of {})", plan.team_size()) : "", groups,
         streams ? " with streamed blocks" : "");
  if (plan.ranks.back().share != plan.team_size() - 1)
    fail("plan: the team of the last rank is incomplete ({} of {})", plan.ranks.back().share + 1, plan.team_size());
  check_seconds(plan.predicted.step_seconds, "predicted.step_seconds");
  check_seconds(plan.predicted.throughput_step_seconds, "predicted.throughput_step_seconds");
  if (plan.predicted.job_seconds) check_seconds(*plan.predicted.job_seconds, "predicted.job_seconds");
  if (plan.predicted.seconds_per_job) check_seconds(*plan.predicted.seconds_per_job, "predicted.seconds_per_job");
}

nlohmann::json to_json(const Plan& plan) {
  nlohmann::json ranks = nlohmann::json::array();
  for (const RankPlan& r : plan.ranks) {
    nlohmann::json blocks = nlohmann::json::array();
    for (const auto& b : r.blocks) blocks.push_back({{"name", b.name}, {"home", to_string(b.home)}, {"bytes", b.bytes}});
    ranks.push_back({
        {"rank", r.rank},
        {"device", r.device},
        {"group", r.group},
        {"stage", r.stage},
        {"share", r.share},
        {"budget_bytes", r.budget_bytes},
        {"peak_bytes", r.peak_bytes},
        {"activation_bytes", r.activation_bytes},
        {"slot_bytes", r.slot_bytes},
        {"prefetch_depth", r.prefetch_depth},
        {"blocks", std::move(blocks)},
        {"predicted",
         {{"compute_seconds", r.predicted.compute_seconds},
          {"transfer_seconds", r.predicted.transfer_seconds},
          {"exposed_transfer_seconds", r.predicted.exposed_transfer_seconds},
          {"boundary_seconds", r.predicted.boundary_seconds},
          {"stage_seconds", r.predicted.stage_seconds}}},
    });
    if (!r.expert.empty()) ranks.back()["expert"] = r.expert;
  }
  nlohmann::json predicted = {{"step_seconds", plan.predicted.step_seconds},
                              {"throughput_step_seconds", plan.predicted.throughput_step_seconds}};
  if (plan.predicted.job_seconds) predicted["job_seconds"] = *plan.predicted.job_seconds;
  if (plan.predicted.seconds_per_job) predicted["seconds_per_job"] = *plan.predicted.seconds_per_job;
  nlohmann::json out = {
      {"schema", "ditrun.plan/1"},
      {"mode", to_string(plan.mode)},
      {"objective", to_string(plan.objective)},
      {"sequence_parallel", plan.sequence_parallel},
      {"sequence_ring", plan.sequence_ring},
      {"cfg_parallel", plan.cfg_parallel},
      {"micro_batches", plan.micro_batches},
      {"steps", plan.steps},
      {"exact", plan.exact},
      {"host_budget_bytes", plan.host_budget_bytes},
      {"host_pinned_bytes", plan.host_pinned_bytes},
      {"encoder_bytes", plan.encoder_bytes},
      {"ranks", std::move(ranks)},
      {"predicted", std::move(predicted)},
  };
  if (plan.experts) {
    nlohmann::json e = {{"strategy", to_string(plan.experts->strategy)},
                        {"swap_seconds", plan.experts->swap_seconds},
                        {"high_steps", plan.experts->high_steps},
                        {"low_steps", plan.experts->low_steps}};
    if (plan.experts->alternative_job_seconds) e["alternative_job_seconds"] = *plan.experts->alternative_job_seconds;
    out["experts"] = std::move(e);
  }
  return out;
}

std::string_view to_string(ExpertStrategy strategy) {
  switch (strategy) {
    case ExpertStrategy::both: return "both";
    case ExpertStrategy::swap: return "swap";
    case ExpertStrategy::phases: return "phases";
  }
  return "both";
}

namespace {

// Reads one object, naming fields by their path ("ranks[0].blocks[2].home") in errors.
struct Reader {
  const nlohmann::json& json;
  std::string path;

  std::string field(std::string_view name) const { return path.empty() ? std::string(name) : path + "." + std::string(name); }
  [[noreturn]] void bad(std::string_view name, std::string_view what) const { fail("plan: {}: {}", field(name), what); }
  const nlohmann::json* find(std::string_view name) const {
    auto it = json.find(name);
    return it == json.end() ? nullptr : &*it;
  }
  const nlohmann::json& at(std::string_view name) const {
    if (const auto* v = find(name)) return *v;
    bad(name, "missing");
  }
  uint64_t bytes(std::string_view name) const {
    const auto& v = at(name);
    // Parsed JSON gives unsigned numbers, JSON built in C++ may hold signed ones: take both.
    if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
      bad(name, fmt::format("{} is not a byte count", v.dump()));
    return v.get<uint64_t>();
  }
  uint64_t bytes_or(std::string_view name, uint64_t fallback) const { return find(name) ? bytes(name) : fallback; }
  int integer_or(std::string_view name, int fallback) const {
    const auto* v = find(name);
    if (!v) return fallback;
    if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > 1000000)
      bad(name, fmt::format("{} is not a small non-negative integer", v->dump()));
    return v->get<int>();
  }
  double seconds(std::string_view name) const {
    const auto& v = at(name);
    if (!v.is_number()) bad(name, fmt::format("{} is not a number of seconds", v.dump()));
    return v.get<double>();
  }
  double seconds_or(std::string_view name, double fallback) const { return find(name) ? seconds(name) : fallback; }
  std::string text(std::string_view name) const {
    const auto& v = at(name);
    if (!v.is_string()) bad(name, fmt::format("{} is not a string", v.dump()));
    return v.get<std::string>();
  }
  const nlohmann::json& array(std::string_view name) const {
    const auto& v = at(name);
    if (!v.is_array()) bad(name, "is not an array");
    return v;
  }
  Reader object(std::string_view name, const nlohmann::json& v) const {
    if (!v.is_object()) fail("plan: {}: is not an object", field(name));
    return Reader{v, field(name)};
  }
};

PlanMode parse_mode(const Reader& r) {
  const std::string mode = r.text("mode");
  for (size_t i = 0; i < std::size(mode_names); ++i)
    if (mode == mode_names[i]) return static_cast<PlanMode>(i);
  r.bad("mode", fmt::format("'{}' is not single, offload, pipeline, replicas or replicas_of_pipelines", mode));
}

}  // namespace

Plan plan_from_json(const nlohmann::json& json) {
  if (!json.is_object()) fail("plan: not a JSON object");
  const Reader top{json, ""};
  if (const auto* schema = top.find("schema"); schema && *schema != "ditrun.plan/1")
    top.bad("schema", fmt::format("{} is not \"ditrun.plan/1\"", schema->dump()));
  Plan plan;
  plan.mode = parse_mode(top);
  if (top.find("objective")) {
    const std::string objective = top.text("objective");
    if (objective != "latency" && objective != "throughput")
      top.bad("objective", fmt::format("'{}' is not latency or throughput", objective));
    plan.objective = parse_objective(objective);
  }
  plan.micro_batches = top.integer_or("micro_batches", 1);
  plan.sequence_parallel = top.integer_or("sequence_parallel", 1);
  plan.sequence_ring = top.integer_or("sequence_ring", 0);
  plan.cfg_parallel = top.integer_or("cfg_parallel", 1);
  plan.steps = top.integer_or("steps", 0);
  if (const auto* exact = top.find("exact")) {
    if (!exact->is_boolean()) top.bad("exact", "is not true or false");
    plan.exact = exact->get<bool>();
  }
  const auto& ranks = top.array("ranks");
  int stage_in_group = 0, last_group = -1;
  for (size_t i = 0; i < ranks.size(); ++i) {
    const Reader r = top.object(fmt::format("ranks[{}]", i), ranks[i]);
    RankPlan rank;
    rank.rank = r.integer_or("rank", static_cast<int>(i));
    rank.device = r.text("device");
    rank.group = r.integer_or("group", 0);
    rank.share = r.integer_or("share", 0);
    if (r.find("expert")) rank.expert = r.text("expert");
    if (rank.share == 0) stage_in_group = rank.group == last_group ? stage_in_group + 1 : 0;
    last_group = rank.group;
    rank.stage = r.integer_or("stage", stage_in_group);
    rank.budget_bytes = r.bytes("budget_bytes");
    rank.peak_bytes = r.bytes("peak_bytes");
    rank.activation_bytes = r.bytes_or("activation_bytes", 0);
    const auto& blocks = r.array("blocks");
    uint64_t largest_streamed = 0;
    for (size_t b = 0; b < blocks.size(); ++b) {
      const Reader br = r.object(fmt::format("blocks[{}]", b), blocks[b]);
      PlacedBlock block;
      block.name = br.text("name");
      const std::string home = br.text("home");
      if (home == "resident") block.home = Home::resident;
      else if (home == "streamed") block.home = Home::streamed;
      else br.bad("home", fmt::format("'{}' is not resident or streamed", home));
      block.bytes = br.bytes("bytes");
      if (block.home == Home::streamed) largest_streamed = std::max(largest_streamed, block.bytes);
      rank.blocks.push_back(std::move(block));
    }
    rank.slot_bytes = r.bytes_or("slot_bytes", largest_streamed);
    rank.prefetch_depth = r.integer_or("prefetch_depth", largest_streamed > 0 ? 2 : 0);
    if (const auto* p = r.find("predicted")) {
      const Reader pr = r.object("predicted", *p);
      rank.predicted = {pr.seconds_or("compute_seconds", 0), pr.seconds_or("transfer_seconds", 0),
                        pr.seconds_or("exposed_transfer_seconds", 0), pr.seconds_or("boundary_seconds", 0),
                        pr.seconds_or("stage_seconds", 0)};
    }
    plan.host_pinned_bytes += rank.streamed_bytes();
    plan.ranks.push_back(std::move(rank));
  }
  if (top.find("host_pinned_bytes") && top.bytes("host_pinned_bytes") != plan.host_pinned_bytes)
    top.bad("host_pinned_bytes", fmt::format("{} is not the sum of streamed blocks ({})", top.bytes("host_pinned_bytes"),
                                             plan.host_pinned_bytes));
  // Without a host budget the plan only claims what it pins.
  plan.host_budget_bytes = top.bytes_or("host_budget_bytes", plan.host_pinned_bytes);
  plan.encoder_bytes = top.bytes_or("encoder_bytes", 0);
  const Reader predicted = top.object("predicted", top.at("predicted"));
  plan.predicted.step_seconds = predicted.seconds("step_seconds");
  plan.predicted.throughput_step_seconds = predicted.seconds_or("throughput_step_seconds", plan.predicted.step_seconds);
  if (predicted.find("job_seconds")) plan.predicted.job_seconds = predicted.seconds("job_seconds");
  if (predicted.find("seconds_per_job")) plan.predicted.seconds_per_job = predicted.seconds("seconds_per_job");
  if (top.find("experts")) {
    const Reader e = top.object("experts", top.at("experts"));
    ExpertPlan experts;
    const std::string strategy = e.text("strategy");
    if (strategy == "swap") experts.strategy = ExpertStrategy::swap;
    else if (strategy == "phases") experts.strategy = ExpertStrategy::phases;
    else if (strategy != "both") e.bad("strategy", fmt::format("'{}' is not both, swap or phases", strategy));
    experts.swap_seconds = e.seconds_or("swap_seconds", 0);
    experts.high_steps = int(e.seconds_or("high_steps", 0));
    experts.low_steps = int(e.seconds_or("low_steps", 0));
    if (e.find("alternative_job_seconds")) experts.alternative_job_seconds = e.seconds("alternative_job_seconds");
    plan.experts = experts;
  }
  validate(plan);
  return plan;
}

std::string summarize(const Plan& plan) {
  std::string out = fmt::format("plan: {} ({} objective, {} rank(s), {} group(s), {} micro-batch(es)){}\n",
                                to_string(plan.mode), to_string(plan.objective), plan.ranks.size(), plan.group_count(),
                                plan.micro_batches, plan.exact ? "" : " [not proven optimal]");
  if (plan.team_size() > 1)
    out += fmt::format("  each stage shared by {} ranks (sequence parallel {}{}, CFG parallel {})\n", plan.team_size(),
                       plan.sequence_parallel,
                       plan.sequence_ring > 0 ? fmt::format(" with a ring of {}", plan.sequence_ring) : "",
                       plan.cfg_parallel);
  out += fmt::format("  step {} per job", format_seconds(plan.predicted.step_seconds));
  if (plan.group_count() > 1) out += fmt::format(", {} amortized over groups", format_seconds(plan.predicted.throughput_step_seconds));
  if (plan.predicted.job_seconds) out += fmt::format("; job {}", format_seconds(*plan.predicted.job_seconds));
  out += fmt::format("; pinned host {} of {}\n", format_bytes(plan.host_pinned_bytes), format_bytes(plan.host_budget_bytes));
  for (const RankPlan& r : plan.ranks) {
    size_t streamed = 0;
    for (const auto& b : r.blocks) streamed += b.home == Home::streamed;
    out += fmt::format("  rank {} {} (group {} stage {}{}): {} blocks {}..{}, {} streamed; peak {} of {}; "
                       "compute {}, exposed transfer {}, boundary {}\n",
                       r.rank, r.device, r.group, r.stage,
                       plan.team_size() > 1 ? fmt::format(" share {}", r.share) : "", r.blocks.size(), r.blocks.front().name, r.blocks.back().name,
                       streamed, format_bytes(r.peak_bytes), format_bytes(r.budget_bytes),
                       format_seconds(r.predicted.compute_seconds), format_seconds(r.predicted.exposed_transfer_seconds),
                       format_seconds(r.predicted.boundary_seconds));
  }
  return out;
}

namespace {

// The position's prediction when its step is shared (see share_steps).
RankPrediction shared_prediction(const RankPlan& rank, const ModelCost& cost, const Throughput& device,
                                 StepSharing sharing) {
  RankPrediction p = rank.predicted;
  p.compute_seconds = 0;
  for (const PlacedBlock& placed : rank.blocks) {
    const auto it = std::find_if(cost.blocks.begin(), cost.blocks.end(),
                                 [&](const BlockCost& b) { return b.name == placed.name; });
    if (it == cost.blocks.end()) fail("plan: block '{}' is not in the model's cost", placed.name);
    const bool whole = it == cost.blocks.begin() || it + 1 == cost.blocks.end();  // prologue, epilogue
    p.compute_seconds += whole ? compute_seconds(*it, device, rank.device)
                               : shared_compute_seconds(*it, device, rank.device, sharing);
  }
  // The state is split after the stage's first unit and gathered after its last: a download
  // and an upload each, of about the whole state.
  if (device.memory_bytes_per_s > 0) {
    const auto first = std::find_if(cost.blocks.begin(), cost.blocks.end(),
                                    [&](const BlockCost& b) { return b.name == rank.blocks.front().name; });
    p.compute_seconds += 4.0 * double(first->activation_bytes) / device.memory_bytes_per_s;
  }
  p.exposed_transfer_seconds = std::max(0.0, p.transfer_seconds - p.compute_seconds);
  p.stage_seconds = p.compute_seconds + p.exposed_transfer_seconds + p.boundary_seconds;
  return p;
}

}  // namespace

Plan share_steps(const Plan& plan, int sequence_parallel, int cfg_parallel, const ModelCost* cost,
                 const Throughput* device, int ring) {
  if (sequence_parallel < 1) fail("sequence parallel degree {} is below 1", sequence_parallel);
  if (cfg_parallel != 1 && cfg_parallel != 2) fail("CFG parallel degree {} is not 1 or 2", cfg_parallel);
  if (plan.team_size() != 1) fail("the plan already shares its steps over teams of {} ranks", plan.team_size());
  if (ring < 0 || (ring > 0 && sequence_parallel % ring != 0))
    fail("a ring of {} does not divide the sequence parallel degree {}", ring, sequence_parallel);
  Plan shared = plan;
  shared.sequence_parallel = sequence_parallel;
  shared.cfg_parallel = cfg_parallel;
  shared.ranks.clear();
  shared.host_pinned_bytes = 0;
  const int team = sequence_parallel * cfg_parallel;
  for (const RankPlan& r : plan.ranks)
    for (int k = 0; k < team; ++k) {
      RankPlan member = r;
      member.rank = int(shared.ranks.size());
      member.share = k;
      member.device = fmt::format("{}:{}", r.device.starts_with("cuda") ? "cuda" : "cpu", member.rank);
      shared.host_pinned_bytes += member.streamed_bytes();
      shared.ranks.push_back(std::move(member));
    }
  if (cost && device) {
    // A job's step passes every stage of its group: its time scales with their sum; a queue's
    // throughput with the slowest stage.
    double sum_before = 0, sum_after = 0, max_before = 0, max_after = 0;
    for (const RankPlan& r : plan.ranks) {
      const RankPrediction p = shared_prediction(r, *cost, *device, {sequence_parallel, cfg_parallel, ring});
      if (r.group == 0) sum_before += r.predicted.stage_seconds, sum_after += p.stage_seconds;
      max_before = std::max(max_before, r.predicted.stage_seconds);
      max_after = std::max(max_after, p.stage_seconds);
      for (RankPlan& member : shared.ranks)
        if (member.group == r.group && member.stage == r.stage) member.predicted = p;
    }
    if (sum_before > 0) shared.predicted.step_seconds *= sum_after / sum_before;
    if (max_before > 0) shared.predicted.throughput_step_seconds *= max_after / max_before;
    if (shared.steps > 0) {
      shared.predicted.job_seconds = shared.steps * shared.predicted.step_seconds;
      shared.predicted.seconds_per_job = shared.steps * shared.predicted.throughput_step_seconds;
    }
  }
  // Every member pins what it streams: the host budget must hold the team's copies.
  if (shared.host_pinned_bytes > shared.host_budget_bytes)
    fail("sharing each step over {} ranks pins {} of streamed blocks ({} per rank), more than the host budget of {}",
         team, format_bytes(shared.host_pinned_bytes), format_bytes(plan.host_pinned_bytes),
         format_bytes(shared.host_budget_bytes));
  validate(shared);
  return shared;
}

}  // namespace ditrun::partition
