// `ditrun run` following plans, through the binary: the plan it makes itself for a budgeted
// CPU (--device-memory) and a plan JSON from `ditrun plan` both stream blocks and give
// outputs bit-identical to the all-resident run; plans it cannot follow and budgets too
// small fail with a message naming why.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "launcher/backend_options.h"
#include "models/pipeline/tensor_files.h"
#include "reference_case.h"
#include "media/png.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

int ditrun(const std::string& args, const std::string& log) {
  const std::string cmd = ditrun_binary() + " " + args + " > " + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int streamed_blocks(const nlohmann::json& plan) {
  int n = 0;
  for (const auto& b : plan["ranks"][0]["blocks"]) n += b["home"] == "streamed";
  return n;
}

TEST(RunPlan, ItsOwnPlanForABudgetedCpuStreamsAndChangesNoBit) {
  const std::string dir = temp_dir("run-own-plan");
  const std::string job = " --width 256 --height 256 --steps 2";
  ASSERT_EQ(ditrun("run --out " + dir + "/all" + job, dir + "/log-all"), 0) << slurp(dir + "/log-all");
  // 5 MiB holds this job's activations and two slots, not every weight of the built-in model.
  ASSERT_EQ(ditrun("run --out " + dir + "/budget" + job + " --device-memory 5mb", dir + "/log-budget"), 0)
      << slurp(dir + "/log-budget");
  const std::string log = slurp(dir + "/log-budget");
  EXPECT_NE(log.find("plan: offload on cpu"), std::string::npos) << log;
  EXPECT_NE(log.find("streamed from a"), std::string::npos) << log;
  EXPECT_EQ(slurp(dir + "/all/image.safetensors"), slurp(dir + "/budget/image.safetensors"));
  // The pictures' pixels (their text names the run's temporary conditioning file).
  EXPECT_EQ(media::read_png(dir + "/all/image.png").rgb, media::read_png(dir + "/budget/image.png").rgb);

  // A model larger than host RAM is refused with the shortfall, not left to the OS to kill.
  EXPECT_EQ(ditrun("run --out " + dir + "/ram" + job + " --devices 'cpu, host=2mb'", dir + "/log-ram"), 2);
  EXPECT_NE(slurp(dir + "/ram/ledger.jsonl").find("everything runs resident on cpu, which needs"), std::string::npos)
      << slurp(dir + "/log-ram");

  // Too small for the activations and two slots: refused before loading, recorded as failed.
  EXPECT_EQ(ditrun("run --out " + dir + "/tiny" + job + " --device-memory 1mb", dir + "/log-tiny"), 2);
  EXPECT_NE(slurp(dir + "/tiny/ledger.jsonl").find("plan does not fit"), std::string::npos) << slurp(dir + "/log-tiny");
}

struct ReferenceJob {
  std::string dir = temp_dir("run-plan-file");
  std::string base = testdata("reference/flux-tiny-dev");
  std::string model = base + ".safetensors --config " + base + ".config.json";
  int64_t prompt_tokens = 0;
  ReferenceJob() {
    const auto io = models::read_host_tensors(base + ".io.safetensors");
    const HostTensor txt = batch_item(io.at("in.txt"), 0), y = batch_item(io.at("in.y"), 0);
    prompt_tokens = txt.shape[0];
    models::write_host_tensors(dir + "/cond.safetensors", {{"txt", &txt}, {"y", &y}});
  }
  std::string job() const { return " --cond " + dir + "/cond.safetensors --width 64 --height 64 --steps 2 --seed 5"; }
};

TEST(RunPlan, FollowsAPlanFileFromThePlanCommand) {
  ReferenceJob r;
  const std::string plan = r.dir + "/plan.json";
  ASSERT_EQ(ditrun("plan " + r.model + " --device-memory 3mb --width 64 --height 64 --text-tokens " +
                       std::to_string(r.prompt_tokens) + " --out " + plan,
                   r.dir + "/log-plan"),
            0)
      << slurp(r.dir + "/log-plan");
  const auto json = nlohmann::json::parse(slurp(plan));
  EXPECT_EQ(json["mode"], "offload");
  EXPECT_EQ(json["ranks"][0]["device"], "cpu");
  EXPECT_GT(streamed_blocks(json), 0);

  ASSERT_EQ(ditrun("run " + r.model + r.job() + " --out " + r.dir + "/resident", r.dir + "/log-resident"), 0)
      << slurp(r.dir + "/log-resident");
  ASSERT_EQ(ditrun("run " + r.model + r.job() + " --plan " + plan + " --out " + r.dir + "/planned", r.dir + "/log-planned"), 0)
      << slurp(r.dir + "/log-planned");
  EXPECT_EQ(slurp(r.dir + "/resident/image.safetensors"), slurp(r.dir + "/planned/image.safetensors"));
}

TEST(RunPlan, RefusesPlansItCannotFollow) {
  // Without a GPU (CI): a GPU plan cannot run here, and the message says why.
  if (!launcher::cuda_unavailable()) GTEST_SKIP() << "this machine has a GPU: the GPU plan would run";
  ReferenceJob r;
  const std::string gpu_plan = r.dir + "/gpu.json";
  ASSERT_EQ(ditrun("plan " + r.model + " --devices '1x 24gb' --out " + gpu_plan, r.dir + "/log-plan"), 0)
      << slurp(r.dir + "/log-plan");
  EXPECT_EQ(ditrun("run " + r.model + r.job() + " --plan " + gpu_plan + " --out " + r.dir + "/o1", r.dir + "/log1"), 2);
  EXPECT_NE(slurp(r.dir + "/log1").find("rank 0 runs on cuda:0, but this machine cannot run CUDA"), std::string::npos)
      << slurp(r.dir + "/log1");

  EXPECT_EQ(ditrun("run " + r.model + r.job() + " --plan " + gpu_plan + " --devices cpu --out " + r.dir + "/o2",
                   r.dir + "/log2"),
            2);
  EXPECT_NE(slurp(r.dir + "/log2").find("--plan already says"), std::string::npos) << slurp(r.dir + "/log2");

  {
    std::ofstream bad(r.dir + "/bad.json");
    bad << R"({"schema": "ditrun.plan/1", "mode": "single"})";
  }
  EXPECT_EQ(ditrun("run " + r.model + r.job() + " --plan " + r.dir + "/bad.json --out " + r.dir + "/o3", r.dir + "/log3"), 2);
  EXPECT_NE(slurp(r.dir + "/log3").find(r.dir + "/bad.json: plan"), std::string::npos) << slurp(r.dir + "/log3");

  // A plan made for other weights (q8_0 bytes) is caught when the weights are placed.
  const std::string other = r.dir + "/other.json";
  ASSERT_EQ(ditrun("plan flux-tiny --weights q8_0 --devices cpu --out " + other, r.dir + "/log-other"), 0)
      << slurp(r.dir + "/log-other");
  EXPECT_EQ(ditrun("run " + r.model + r.job() + " --plan " + other + " --out " + r.dir + "/o4", r.dir + "/log4"), 2);
  EXPECT_NE(slurp(r.dir + "/log4").find("was the plan made for other weights?"), std::string::npos)
      << slurp(r.dir + "/log4");
}

}  // namespace
}  // namespace ditrun::test
