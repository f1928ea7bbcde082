// `ditrun run` end to end through the binary: a job file reproducing the Flux reference
// sample, a job that fails without stopping the others, ledger and --resume, atomic outputs
// (no temporary files left), the single-job flags on Wan, and the built-in default model.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "launcher/ledger.h"
#include "models/pipeline/tensor_files.h"
#include "reference_case.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

namespace fs = std::filesystem;

int run_ditrun(const std::string& args, const std::string& log) {
  const std::string cmd = ditrun_binary() + " --log-level warn run " + args + " > " + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::set<std::string> files_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(RunCommand, JobFileReproducesReferenceAndRecordsFailures) {
  const std::string dir = temp_dir("run-jobs"), out = dir + "/out";
  const std::string base = testdata("reference/flux-tiny-dev");
  const auto io = models::read_host_tensors(base + ".io.safetensors");
  const HostTensor txt = batch_item(io.at("in.txt"), 1), y = batch_item(io.at("in.y"), 1), noise = batch_item(io.at("sample.noise"), 1);
  models::write_host_tensors(dir + "/cond.safetensors", {{"txt", &txt}, {"y", &y}});
  models::write_host_tensors(dir + "/noise.safetensors", {{"noise", &noise}});
  {
    std::ofstream jobs(dir + "/jobs.jsonl");
    jobs << R"({"id": "ref1", "cond": "cond.safetensors", "noise": "noise.safetensors", "guidance": 3.5})" << "\n"
         << "# a comment line\n"
         << R"({"id": "nocond", "cond": "missing.safetensors", "seed": 1, "width": 64, "height": 64})" << "\n"
         << R"({"id": "typo", "cond": "cond.safetensors", "seed": 1, "width": 64, "height": 64, "stpes": 3})" << "\n";
  }
  const std::string args = base + ".safetensors --config " + base + ".config.json --jobs " + dir + "/jobs.jsonl --out " + out;
  EXPECT_EQ(run_ditrun(args, dir + "/log1"), 2) << slurp(dir + "/log1");

  const auto latent = models::read_host_tensors(out + "/ref1.safetensors");
  EXPECT_LT(max_abs_diff(latent.at("latent"), batch_item(io.at("sample.latent"), 1)), 1e-3);
  EXPECT_EQ(files_in(out), (std::set<std::string>{"ledger.jsonl", "ref1.safetensors", "ref1.png"}));

  auto ledger = launcher::read_ledger(out);
  ASSERT_EQ(ledger.entries.size(), 3u);
  EXPECT_TRUE(ledger.entries[0].done());
  EXPECT_EQ(ledger.entries[0].steps, 3);
  EXPECT_FALSE(ledger.entries[1].done());
  EXPECT_NE(ledger.entries[1].error.find("missing.safetensors"), std::string::npos) << ledger.entries[1].error;
  EXPECT_NE(ledger.entries[1].error.find("nocond"), std::string::npos) << ledger.entries[1].error;
  EXPECT_NE(ledger.entries[2].error.find("stpes"), std::string::npos) << ledger.entries[2].error;

  // --resume skips the finished job (its output untouched) and retries the failed ones.
  const auto written = fs::last_write_time(out + "/ref1.safetensors");
  EXPECT_EQ(run_ditrun(args + " --resume", dir + "/log2"), 2) << slurp(dir + "/log2");
  EXPECT_EQ(fs::last_write_time(out + "/ref1.safetensors"), written);
  ledger = launcher::read_ledger(out);
  ASSERT_EQ(ledger.entries.size(), 5u);
  EXPECT_EQ(ledger.entries[3].id, "nocond");
  EXPECT_EQ(ledger.entries[4].id, "typo");
}

TEST(RunCommand, SingleJobFlagsOnWanWithCfg) {
  const std::string dir = temp_dir("run-wan"), out = dir + "/out";
  const std::string base = testdata("reference/wan21-tiny-t2v");
  const auto io = models::read_host_tensors(base + ".io.safetensors");
  const HostTensor ctx = batch_item(io.at("in.context"), 0), neg = batch_item(io.at("in.context_neg"), 0);
  const HostTensor noise = batch_item(io.at("sample.noise"), 0);
  models::write_host_tensors(dir + "/cond.safetensors", {{"context", &ctx}, {"context_neg", &neg}});
  models::write_host_tensors(dir + "/noise.safetensors", {{"noise", &noise}});
  const std::string args = base + ".safetensors --config " + base + ".config.json --id w0 --cond " + dir +
                           "/cond.safetensors --noise " + dir + "/noise.safetensors --out " + out;
  ASSERT_EQ(run_ditrun(args, dir + "/log"), 0) << slurp(dir + "/log");
  const auto latent = models::read_host_tensors(out + "/w0.safetensors");
  EXPECT_LT(max_abs_diff(latent.at("latent"), batch_item(io.at("sample.latent"), 0)), 1e-3);
  EXPECT_TRUE(fs::exists(out + "/w0.png"));
}

TEST(RunCommand, BuiltInModelRendersWithoutInputs) {
  const std::string dir = temp_dir("run-builtin"), out = dir + "/out";
  ASSERT_EQ(run_ditrun("--out " + out + " --steps 2 --width 64 --height 64", dir + "/log"), 0) << slurp(dir + "/log");
  EXPECT_EQ(files_in(out), (std::set<std::string>{"ledger.jsonl", "image.safetensors", "image.png"}));
  const auto latent = models::read_host_tensors(out + "/image.safetensors");
  EXPECT_EQ(latent.at("latent").shape, (Shape{16, 8, 8}));
}

TEST(RunCommand, BadFlagsFailWithOneLine) {
  const std::string dir = temp_dir("run-bad");
  EXPECT_EQ(run_ditrun("--out " + dir + "/out --steps 0", dir + "/log"), 2);
  EXPECT_NE(slurp(dir + "/log").find("steps"), std::string::npos) << slurp(dir + "/log");
  EXPECT_EQ(run_ditrun(testdata("reference/flux-tiny-dev.safetensors") + " --out " + dir + "/o2", dir + "/log2"), 2);
  EXPECT_NE(slurp(dir + "/log2").find("--cond"), std::string::npos) << slurp(dir + "/log2");
}

}  // namespace
}  // namespace ditrun::test
