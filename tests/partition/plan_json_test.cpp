#include "partition/plan.h"

#include <gtest/gtest.h>

#include "partition/solver.h"
#include "runtime/core/units.h"
#include "runtime/core/error.h"
#include "test_models.h"

namespace ditrun::partition {
namespace {

std::string from_json_error(const nlohmann::json& j) {
  try {
    plan_from_json(j);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

nlohmann::json minimal_plan() {
  return nlohmann::json::parse(R"({
    "mode": "pipeline",
    "ranks": [
      {"device": "cuda:0", "budget_bytes": 1000, "peak_bytes": 900,
       "blocks": [{"name": "a", "home": "resident", "bytes": 500}, {"name": "b", "home": "streamed", "bytes": 200}]},
      {"device": "cuda:1", "budget_bytes": 1000, "peak_bytes": 300,
       "blocks": [{"name": "c", "home": "resident", "bytes": 300}]}
    ],
    "predicted": {"step_seconds": 0.5}
  })");
}

TEST(PlanJson, SolverPlansRoundTrip) {
  using namespace testing;
  for (Objective objective : {Objective::latency, Objective::throughput}) {
    const Plan plan = solve(input_for(flux_like(2, "bf16", 2),
                                      {gpu("rtx4090", 0, 14 * GiB), gpu("rtx4090", 1, 14 * GiB),
                                       gpu("rtx4090", 2, 20 * GiB)},
                                      8 * GiB, objective));
    Plan with_encoders = plan;
    with_encoders.encoder_bytes = 5 * GiB;  // room kept for the text encoders travels with the plan
    EXPECT_EQ(plan_from_json(to_json(with_encoders)).encoder_bytes, 5 * GiB);
    const nlohmann::json json = to_json(plan);
    EXPECT_EQ(json.at("schema"), "ditrun.plan/1");
    EXPECT_TRUE(json.at("ranks").at(0).at("blocks").at(0).contains("home"));
    const Plan back = plan_from_json(nlohmann::json::parse(json.dump()));
    EXPECT_EQ(to_json(back), json);
  }
}

TEST(PlanJson, MinimalPlanGetsDefaults) {
  const Plan plan = plan_from_json(minimal_plan());
  EXPECT_EQ(plan.mode, PlanMode::pipeline);
  EXPECT_EQ(plan.objective, Objective::latency);
  ASSERT_EQ(plan.ranks.size(), 2u);
  EXPECT_EQ(plan.ranks[1].rank, 1);
  EXPECT_EQ(plan.ranks[1].stage, 1);
  EXPECT_EQ(plan.ranks[0].slot_bytes, 200u);
  EXPECT_EQ(plan.ranks[0].prefetch_depth, 2);
  EXPECT_EQ(plan.ranks[1].prefetch_depth, 0);
  EXPECT_EQ(plan.host_pinned_bytes, 200u);
  EXPECT_EQ(plan.host_budget_bytes, 200u);
  EXPECT_EQ(plan.encoder_bytes, 0u);
  EXPECT_DOUBLE_EQ(plan.predicted.throughput_step_seconds, 0.5);
  EXPECT_FALSE(plan.predicted.job_seconds.has_value());
  EXPECT_NE(summarize(plan).find("rank 1 cuda:1 (group 0 stage 1): 1 blocks c..c, 0 streamed"), std::string::npos)
      << summarize(plan);
}

TEST(PlanJson, ErrorsNameTheField) {
  auto edit = [](auto change) {
    nlohmann::json j = minimal_plan();
    change(j);
    return from_json_error(j);
  };
  EXPECT_EQ(edit([](auto& j) { j.erase("mode"); }), "plan: mode: missing");
  EXPECT_EQ(edit([](auto& j) { j["mode"] = "sharded"; }),
            "plan: mode: 'sharded' is not single, offload, pipeline, replicas or replicas_of_pipelines");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][0]["blocks"][1]["home"] = "disk"; }),
            "plan: ranks[0].blocks[1].home: 'disk' is not resident or streamed");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][1].erase("device"); }), "plan: ranks[1].device: missing");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][1]["budget_bytes"] = -5; }), "plan: ranks[1].budget_bytes: -5 is not a byte count");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][0]["blocks"][0].erase("bytes"); }), "plan: ranks[0].blocks[0].bytes: missing");
  EXPECT_EQ(edit([](auto& j) { j["ranks"] = nlohmann::json::object(); }), "plan: ranks: is not an array");
  EXPECT_EQ(edit([](auto& j) { j["ranks"] = nlohmann::json::array(); }), "plan: ranks is empty");
  EXPECT_EQ(edit([](auto& j) { j["predicted"].erase("step_seconds"); }), "plan: predicted.step_seconds: missing");
  EXPECT_EQ(edit([](auto& j) { j.erase("predicted"); }), "plan: predicted: missing");
  EXPECT_EQ(edit([](auto& j) { j["predicted"]["step_seconds"] = -1; }), "plan: predicted.step_seconds -1 is not a time in seconds");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][1]["peak_bytes"] = 1200; }), "plan: ranks[1].peak_bytes 1.2 KiB exceeds budget_bytes 1000 B");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][0]["peak_bytes"] = 800; }),
            "plan: ranks[0].peak_bytes 800 B is below resident + slots + activations (900 B)");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][0]["prefetch_depth"] = 1; }),
            "plan: ranks[0].prefetch_depth is 1; streamed blocks need at least 2 slots");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][0]["slot_bytes"] = 100; }),
            "plan: ranks[0].slot_bytes 100 B is smaller than its largest streamed block (200 B)");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][1]["device"] = "cuda:0"; }), "plan: ranks[1].device cuda:0 is used by an earlier rank");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][1]["blocks"][0]["name"] = "a"; }), "plan: group 0 holds a block twice");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][1]["rank"] = 5; }), "plan: ranks[1].rank is 5, expected 1");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][1]["group"] = 2; }), "plan: ranks[1].group is 2, expected 0 or 1");
  EXPECT_EQ(edit([](auto& j) { j["host_budget_bytes"] = 100; }), "plan: host_pinned_bytes 200 B exceeds host_budget_bytes 100 B");
  EXPECT_EQ(edit([](auto& j) { j["host_pinned_bytes"] = 7; }), "plan: host_pinned_bytes: 7 is not the sum of streamed blocks (200)");
  EXPECT_EQ(edit([](auto& j) { j["mode"] = "single"; }), "plan: mode 'single' does not match 2 rank(s) in 1 group(s) with streamed blocks");
  EXPECT_EQ(edit([](auto& j) { j["ranks"][1]["group"] = 1; }), "plan: group 1 does not hold the same blocks as group 0");
  EXPECT_EQ(edit([](auto& j) { j["objective"] = "speed"; }), "plan: objective: 'speed' is not latency or throughput");
  EXPECT_EQ(edit([](auto& j) { j["schema"] = "ditrun.plan/9"; }), "plan: schema: \"ditrun.plan/9\" is not \"ditrun.plan/1\"");
  EXPECT_EQ(from_json_error(nlohmann::json::array()), "plan: not a JSON object");
}

}  // namespace
}  // namespace ditrun::partition

namespace ditrun::partition {
namespace {

// Sharing each stage's step over teams: ranks renumbered stage by stage, each team member a
// copy of its position, a JSON round trip that keeps the teams, and teams that do not add up
// refused naming the rank.
TEST(PlanJson, SharedStepsMakeTeamsPerStage) {
  Plan positions = plan_from_json(minimal_plan());
  positions.host_budget_bytes = 1000;
  const Plan shared = share_steps(positions, 2, 2);  // no cost: the predictions are kept
  ASSERT_EQ(shared.ranks.size(), 8u);
  EXPECT_EQ(shared.team_size(), 4);
  for (int r = 0; r < 8; ++r) {
    EXPECT_EQ(shared.ranks[size_t(r)].rank, r);
    EXPECT_EQ(shared.ranks[size_t(r)].stage, r / 4);
    EXPECT_EQ(shared.ranks[size_t(r)].share, r % 4);
    EXPECT_EQ(shared.ranks[size_t(r)].blocks.size(), positions.ranks[size_t(r / 4)].blocks.size());
  }
  EXPECT_EQ(shared.ranks[5].device, "cuda:5");
  EXPECT_EQ(shared.host_pinned_bytes, 4 * positions.host_pinned_bytes);
  EXPECT_EQ(shared.host_share_bytes(), 1000u / 4);
  const nlohmann::json json = to_json(shared);
  EXPECT_EQ(json.at("sequence_parallel"), 2);
  EXPECT_EQ(json.at("cfg_parallel"), 2);
  EXPECT_EQ(to_json(plan_from_json(nlohmann::json::parse(json.dump()))), json);
  EXPECT_NE(summarize(shared).find("each stage shared by 4 ranks"), std::string::npos);

  nlohmann::json missing = json;
  missing["ranks"].erase(3);
  for (size_t i = 3; i < missing["ranks"].size(); ++i) missing["ranks"][i]["rank"] = int(i);
  missing["host_pinned_bytes"] = 3 * positions.host_pinned_bytes;  // the removed member streamed its share
  EXPECT_EQ(from_json_error(missing),
            "plan: ranks[3] starts a stage before the team of rank 2 is complete (3 of 4)");
  nlohmann::json other_blocks = json;
  other_blocks["ranks"][1]["blocks"][0]["name"] = "z";
  EXPECT_EQ(from_json_error(other_blocks), "plan: ranks[1] does not hold the blocks of its team's rank 0");
  EXPECT_THROW(share_steps(positions, 1, 3), Error);
  EXPECT_THROW(share_steps(shared, 2, 1), Error);
  positions.host_budget_bytes = 300;  // 200 pinned per member: two members do not fit
  EXPECT_THROW(share_steps(positions, 2, 1), Error);
}

}  // namespace
}  // namespace ditrun::partition
