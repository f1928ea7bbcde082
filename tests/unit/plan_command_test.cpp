// `ditrun plan` through the binary: presets in any encoding without a file, checkpoints read
// from their file, the JSON and the table, --out, and the errors (a plan that does not fit,
// --weights on a checkpoint, an unknown model).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "launcher/device_inventory.h"
#include "models/arch/detect.h"
#include "models/pipeline/model_cost.h"
#include "models/pipeline/network.h"
#include "models/synth/synthetic_model.h"
#include "models/vae/vae_synth.h"
#include "partition/plan.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

using testing::HasSubstr;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Result {
  int status = -1;
  std::string out, err;
};

Result run_plan(const std::string& args) {
  const std::string dir = temp_dir("plan-cmd");
  const std::string cmd = ditrun_binary() + " --log-level warn plan " + args + " > " + dir + "/out 2> " + dir + "/err";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir + "/out"), slurp(dir + "/err")};
}

nlohmann::json plan_json(const std::string& args) {
  const Result r = run_plan(args + " --json");
  EXPECT_EQ(r.status, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

std::string synth_tiny_flux(const std::string& weights) {
  synth::SynthRequest request;
  request.config = arch::preset("flux-tiny", "test");
  request.target = quant::ConversionTarget::parse(weights);
  request.out_path = temp_dir("plan-model") + "/flux-tiny.safetensors";
  synth::write_synthetic_model(request);
  return request.out_path;
}

TEST(PlanCommand, PresetJsonHasTheFieldsAndTheSynthBytes) {
  const nlohmann::json j = plan_json("flux-dev --weights q8_0 --devices '1x 24gb'");
  EXPECT_EQ(j.at("schema"), "ditrun.plan/1");
  EXPECT_EQ(j.at("mode"), "single");
  EXPECT_EQ(j.at("steps"), 28);
  ASSERT_EQ(j.at("ranks").size(), 1u);
  const auto& rank = j.at("ranks")[0];
  EXPECT_EQ(rank.at("device"), "cuda:0");
  EXPECT_LE(rank.at("peak_bytes").get<uint64_t>(), rank.at("budget_bytes").get<uint64_t>());
  EXPECT_GT(j.at("predicted").at("step_seconds").get<double>(), 0);

  // The blocks' bytes are those `ditrun synth --preset flux-dev --weights q8_0` would write.
  const arch::ModelConfig config = arch::preset("flux-dev", "test");
  const auto network = models::make_network(config);
  const auto cost = models::model_cost(config, *network,
                                       models::converted_weights(config, quant::ConversionTarget::parse("q8_0")),
                                       models::job_geometry(config, {}), models::kGpuActivationBytes);
  ASSERT_EQ(rank.at("blocks").size(), cost.blocks.size());
  for (size_t i = 0; i < cost.blocks.size(); ++i) {
    EXPECT_EQ(rank.at("blocks")[i].at("name"), cost.blocks[i].name);
    EXPECT_EQ(rank.at("blocks")[i].at("home"), "resident");
    EXPECT_EQ(rank.at("blocks")[i].at("bytes").get<uint64_t>(), cost.blocks[i].weight_bytes);
  }
  EXPECT_EQ(rank.at("activation_bytes").get<uint64_t>(), cost.step_activation_bytes);
}

TEST(PlanCommand, Bf16FluxOnOne16GbCardStreams) {
  const nlohmann::json j = plan_json("flux-dev --devices '1x 16gb'");
  EXPECT_EQ(j.at("mode"), "offload");
  size_t streamed = 0;
  for (const auto& b : j.at("ranks")[0].at("blocks")) streamed += b.at("home") == "streamed";
  EXPECT_GT(streamed, 0u);
  EXPECT_GT(j.at("host_pinned_bytes").get<uint64_t>(), 0u);
}

TEST(PlanCommand, WanOnFourGpusForThroughput) {
  const nlohmann::json j = plan_json("wan2.1-t2v-14b --devices '4x h100-80gb' --objective throughput");
  EXPECT_EQ(j.at("micro_batches"), 1);  // the CFG batch of two crosses stages as one message
  EXPECT_EQ(j.at("objective"), "throughput");
  EXPECT_TRUE(j.at("predicted").contains("seconds_per_job"));
  for (const auto& r : j.at("ranks")) EXPECT_THAT(r.at("device").get<std::string>(), HasSubstr("cuda:"));
}

TEST(PlanCommand, CheckpointBytesComeFromTheFile) {
  const std::string model = synth_tiny_flux("fp8-scaled");
  const nlohmann::json j = plan_json(model + " --devices '1x 24gb' --width 256 --height 256 --steps 4");
  EXPECT_EQ(j.at("steps"), 4);
  const models::ModelSource source = models::open_model(model, std::nullopt);
  uint64_t stored = 0, planned = 0;
  for (const Weight& w : source.weights->weights()) stored += w.stored_bytes();
  for (const auto& r : j.at("ranks"))
    for (const auto& b : r.at("blocks")) planned += b.at("bytes").get<uint64_t>();
  EXPECT_EQ(planned, stored);
}

TEST(PlanCommand, CpuOnlyRunsEverythingOnTheHostInF32) {
  const nlohmann::json j = plan_json("flux-tiny --devices 'cpu, host=8gb' --width 64 --height 64 --text-tokens 16");
  EXPECT_EQ(j.at("mode"), "single");
  EXPECT_EQ(j.at("ranks")[0].at("device"), "cpu");
  const arch::ModelConfig config = arch::preset("flux-tiny", "test");
  const models::JobGeometry job = models::job_geometry(config, {.width = 64, .height = 64, .text_tokens = 16});
  EXPECT_EQ(j.at("ranks")[0].at("activation_bytes").get<uint64_t>(),
            uint64_t(models::make_network(config)->activation_elements(job.tokens, job.batch)) * 4);
}

TEST(PlanCommand, RatiosSplitTheWeightsAcrossGpus) {
  // Shares of the weights, nothing for the host: blocks are placed whole, and each GPU's
  // budget has room for one block beyond its share, so the split needs no streaming.
  const nlohmann::json j = plan_json("flux-dev --devices '2x 24gb' --allocation 'cuda:0,40%;cuda:1,60%'");
  EXPECT_EQ(j.at("mode"), "pipeline");
  EXPECT_EQ(j.at("host_pinned_bytes"), 0);
  EXPECT_EQ(j.at("ranks").size(), 2u);
}

TEST(PlanCommand, TablePrintsRanksAndPredictions) {
  const Result r = run_plan("flux-dev --weights fp8 --devices '2x 24gb'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("rank"));
  EXPECT_THAT(r.out, HasSubstr("cuda:0"));
  EXPECT_THAT(r.out, HasSubstr("peak / budget"));
  EXPECT_THAT(r.out, HasSubstr("step "));
  EXPECT_THAT(r.out, HasSubstr("job "));
}

TEST(PlanCommand, OutWritesAPlanThatReadsBack) {
  const std::string path = temp_dir("plan-out") + "/plan.json";
  const Result r = run_plan("wan2.1-t2v-14b --weights q4_K --devices '2x 24gb' --out " + path);
  ASSERT_EQ(r.status, 0) << r.err;
  const partition::Plan plan = partition::plan_from_json(nlohmann::json::parse(slurp(path)));
  EXPECT_EQ(plan.steps, 50);
  EXPECT_GE(plan.ranks.size(), 1u);
}

TEST(PlanCommand, APlanThatDoesNotFitNamesTheShortfall) {
  const Result r = run_plan("flux-dev --devices '1x 8gb, host=8gb'");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("does not fit"));
  EXPECT_THAT(r.err, HasSubstr("short"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(PlanCommand, WeightsWithACheckpointIsAnError) {
  const std::string model = synth_tiny_flux("bf16");
  const Result r = run_plan(model + " --weights q8_0 --devices '1x 24gb'");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("--weights"));
  EXPECT_THAT(r.err, HasSubstr(model));
}

TEST(PlanCommand, UnknownModelsAndBadOptionsSaySo) {
  Result r = run_plan("flux-devv --devices '1x 24gb'");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("neither a file nor a preset"));
  EXPECT_THAT(r.err, HasSubstr("flux-dev"));
  r = run_plan("flux-dev --devices '1x 24gb' --cfg 3");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("cfg must be 1"));
  r = run_plan("flux-dev --devices '1x 24gb' --weights q9_9");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("q9_9"));
  r = run_plan("flux-dev --devices '1x 24gb' --allocation 'cuda:3,12gb'");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("cuda:3"));
}

TEST(DeviceInventory, MeminfoGivesTotalAndAvailable) {
  const auto m = launcher::parse_meminfo("MemTotal:       16384 kB\nMemFree:  100 kB\nMemAvailable:    8192 kB\n", "meminfo");
  EXPECT_EQ(m.total_bytes, 16384u << 10);
  EXPECT_EQ(m.available_bytes, 8192u << 10);
  EXPECT_THROW(launcher::parse_meminfo("MemTotal: 12 kB\n", "meminfo"), Error);
  EXPECT_THROW(launcher::parse_meminfo("MemTotal: x kB\nMemAvailable: 1 kB\n", "meminfo"), Error);
  const auto here = launcher::read_host_memory();
  EXPECT_GT(here.total_bytes, 0u);
  EXPECT_LE(here.available_bytes, here.total_bytes);
  const auto inv = launcher::device_inventory("2x 24gb, host=64gb");
  EXPECT_EQ(inv.gpus().size(), 2u);
  EXPECT_EQ(inv.host().total_bytes, 64ull << 30);
  EXPECT_EQ(launcher::local_inventory().host().total_bytes, here.total_bytes);
}

}  // namespace
}  // namespace ditrun::test

namespace ditrun::test {
namespace {

// --sp and --cfg-parallel: the GPUs form teams, every position's step is priced shared (less
// compute, plus exchanges), and GPU counts that do not divide are refused.
TEST(PlanCommand, TeamsShareAStepAndPriceIt) {
  const std::string wan = "wan2.1-t2v-14b --frames 81 --width 1280 --height 720 --devices '4x h100-80gb' ";
  // Whole steps: one position (on four GPUs the latency objective would pick a team itself).
  const Result whole = run_plan("wan2.1-t2v-14b --frames 81 --width 1280 --height 720 --devices '1x h100-80gb' --json");
  ASSERT_EQ(whole.status, 0) << whole.err;
  const double unshared = nlohmann::json::parse(whole.out)["predicted"]["step_seconds"].get<double>();
  for (const std::string flags : {"--sp 4", "--sp 2 --cfg-parallel"}) {
    const Result r = run_plan(wan + flags + " --json");
    ASSERT_EQ(r.status, 0) << flags << ": " << r.err;
    const auto plan = nlohmann::json::parse(r.out);
    EXPECT_EQ(plan["ranks"].size(), 4u) << flags;
    EXPECT_EQ(plan["sequence_parallel"].get<int>() * plan["cfg_parallel"].get<int>(), 4) << flags;
    const double shared = plan["predicted"]["step_seconds"].get<double>();
    // Four ranks share the work but not the exchanges, the prologue or the epilogue.
    EXPECT_LT(shared, unshared / 1.5) << flags;
    EXPECT_GT(shared, unshared / 4) << flags;
    EXPECT_NO_THROW(partition::plan_from_json(plan)) << flags;
  }
  const Result table = run_plan(wan + "--sp 4");
  EXPECT_THAT(table.out, HasSubstr("teams    4 ranks per stage (sequence parallel 4, CFG parallel 1)"));
  const Result odd = run_plan("wan2.1-t2v-14b --devices '3x h100-80gb' --sp 2");
  EXPECT_EQ(odd.status, 2);
  EXPECT_THAT(odd.err, HasSubstr("3 GPU(s) do not form teams of 2 ranks"));
}

}  // namespace
}  // namespace ditrun::test

namespace ditrun::test {
namespace {

// The latency objective weighs teams against whole steps and says why: a guided Wan video on
// four H100s takes CFG halves on two ranks (half the step), one Flux image keeps whole steps
// (its exchanges through host memory would cost more than they save); a shaped layout
// (--mode, --allocation, throughput) is left as asked.
TEST(PlanCommand, LatencyObjectiveChoosesTeamsWhenTheyAreFaster) {
  const Result wan = run_plan("wan2.1-t2v-14b --devices '4x h100-80gb'");
  ASSERT_EQ(wan.status, 0) << wan.err;
  EXPECT_THAT(wan.out, HasSubstr("layout   teams of 2 (--sp 1 --cfg-parallel) for the latency objective"));
  const nlohmann::json j = plan_json("wan2.1-t2v-14b --devices '4x h100-80gb'");
  EXPECT_EQ(j.at("cfg_parallel"), 2);
  const Result flux = run_plan("flux-dev --devices '4x h100-80gb'");
  ASSERT_EQ(flux.status, 0) << flux.err;
  EXPECT_THAT(flux.out, HasSubstr("layout   whole steps"));
  EXPECT_THAT(run_plan("wan2.1-t2v-14b --devices '4x h100-80gb' --objective throughput").out,
              testing::Not(HasSubstr("layout")));
  // A 6144x6144 Flux job needs 12.7 GiB of activations, more than a 12 GB card holds: whole
  // steps do not fit, a team of four holding a quarter of the tokens each does.
  const Result big = run_plan("flux-dev --weights q4_K --devices '4x 12gb, host=64gb' --width 6144 --height 6144");
  ASSERT_EQ(big.status, 0) << big.err;
  EXPECT_THAT(big.out, HasSubstr("layout   teams of 4 (--sp 4) for the latency objective: whole steps do not fit"));
}

// --vae: the decode's memory (measured by probe decodes of the VAE) comes out of rank 0's GPU
// budget; a GPU too small for it is refused naming both.
TEST(PlanCommand, VaeMemoryComesOutOfRankZerosGpu) {
  const std::string vae = temp_dir("plan-vae") + "/vae.safetensors";
  models::vae::write_synthetic_vae(models::vae::tiny_vae_preset("flux-ae-tiny"), 0, vae);
  const std::string base = "flux-dev --weights q8_0 --devices '1x 24gb' --width 512 --height 512 --json";
  const Result plain = run_plan(base), with_vae = run_plan(base + " --vae " + vae);
  ASSERT_EQ(plain.status, 0) << plain.err;
  ASSERT_EQ(with_vae.status, 0) << with_vae.err;
  const auto budget = [](const Result& r) {
    return nlohmann::json::parse(r.out).at("ranks")[0].at("budget_bytes").get<uint64_t>();
  };
  // A 64x64-position decode of the tiny VAE: its weights, tens of MiB of activations, 128 MiB of scratch.
  const uint64_t kept = budget(plain) - budget(with_vae);
  EXPECT_GT(kept, uint64_t(128) << 20);
  EXPECT_LT(kept, uint64_t(256) << 20);
  const Result table = run_plan("flux-dev --weights q8_0 --devices '1x 24gb' --vae " + vae);
  EXPECT_THAT(table.out, HasSubstr("kept on rank 0's GPU"));
  const Result small = run_plan("flux-dev --weights q8_0 --devices '1x 24gb' --allocation 'cuda:0,100mb' --vae " + vae);
  EXPECT_NE(small.status, 0);
  EXPECT_THAT(small.err, HasSubstr("cannot hold the VAE"));
}

}  // namespace
}  // namespace ditrun::test
