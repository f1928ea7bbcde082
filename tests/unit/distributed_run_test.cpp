// `ditrun run` over several ranks gives the same bits as one process: under mpirun with 1 to
// 4 ranks (--oversubscribe, CPU backend) as pipelines, replicas and replicas of pipelines,
// every output file equals the single-process run's and the ledger records the same jobs as
// done and failed; and the same protocol with ranks as threads (local channels).
#include <gtest/gtest.h>

#include <unistd.h>

#include <signal.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <fstream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "launcher/distributed_run.h"
#include "launcher/ledger.h"
#include "models/pipeline/tensor_files.h"
#include "runtime/sampling/noise.h"
#include "reference_case.h"
#include "test_paths.h"
#include "transport/local_channel.h"

namespace ditrun::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int shell(const std::string& cmd, const std::string& log) {
  const int status = std::system((cmd + " > " + log + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string mpirun(int ranks) {
  return std::string("mpirun ") + (::geteuid() == 0 ? "--allow-run-as-root " : "") + "--oversubscribe -np " +
         std::to_string(ranks) + " ";
}

// A model and a job file of several jobs (one of them bad), with the single-process outputs.
struct Jobs {
  std::string dir, model, jobs;
  std::map<std::string, std::string> reference;  // file name -> bytes
  std::map<std::string, bool> done;              // ledger: id -> done

  Jobs(const std::string& name, const std::string& extra_flags) : dir(temp_dir("dist-" + name)) {
    const std::string base = testdata("reference/" + name);
    model = base + ".safetensors --config " + base + ".config.json " + extra_flags;
    const auto io = models::read_host_tensors(base + ".io.safetensors");
    const bool flux = name.starts_with("flux");
    std::ofstream out(dir + "/jobs.jsonl");
    for (int64_t b = 0; b < 2; ++b) {
      const std::string cond = dir + "/cond" + std::to_string(b) + ".safetensors";
      if (flux) {
        const HostTensor txt = batch_item(io.at("in.txt"), b), y = batch_item(io.at("in.y"), b);
        models::write_host_tensors(cond, {{"txt", &txt}, {"y", &y}});
        out << R"({"id": "a)" << b << R"(", "cond": ")" << cond << R"(", "seed": )" << 10 + b
            << R"(, "width": 64, "height": 48, "steps": 3})" << "\n";
        out << R"({"id": "b)" << b << R"(", "cond": ")" << cond << R"(", "seed": )" << 20 + b
            << R"(, "width": 32, "height": 32, "steps": 2, "guidance": 2.5})" << "\n";
      } else {
        const HostTensor ctx = batch_item(io.at("in.context"), b);
        models::write_host_tensors(cond, {{"context", &ctx}, {"context_neg", &ctx}});
        out << R"({"id": "w)" << b << R"(", "cond": ")" << cond << R"(", "seed": )" << 30 + b
            << R"(, "width": 32, "height": 32, "frames": 5, "steps": 3, "cfg": 4.0})" << "\n";
      }
    }
    out << R"({"id": "bad", "cond": "missing.safetensors", "seed": 1, "width": 32, "height": 32})" << "\n";
    out.close();
    jobs = dir + "/jobs.jsonl";
    const std::string ref = dir + "/single";
    const int rc = shell(ditrun_binary() + " run " + model + " --jobs " + jobs + " --out " + ref, dir + "/log-single");
    EXPECT_EQ(rc, 2) << slurp(dir + "/log-single");  // the bad job
    for (const auto& e : std::filesystem::directory_iterator(ref))
      if (e.path().filename() != "ledger.jsonl") reference[e.path().filename().string()] = slurp(e.path().string());
    for (const auto& e : launcher::read_ledger(ref).entries) done[e.id] = e.done();
  }

  void expect_same(const std::string& out, const std::string& label) const {
    for (const auto& [file, bytes] : reference) EXPECT_TRUE(slurp(out + "/" + file) == bytes) << label << ": " << file;
    size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(out)) files += e.path().filename() != "ledger.jsonl";
    EXPECT_EQ(files, reference.size()) << label;
    std::map<std::string, bool> got;
    for (const auto& e : launcher::read_ledger(out).entries) got[e.id] = e.done();
    EXPECT_EQ(got, done) << label;
  }
};

struct Layout {
  int ranks;
  std::string flags;
};

void check_layouts(const Jobs& jobs, const std::vector<Layout>& layouts) {
  ASSERT_FALSE(jobs.reference.empty());
  for (const Layout& l : layouts) {
    const std::string label = std::to_string(l.ranks) + " ranks " + l.flags;
    const std::string out = jobs.dir + "/np" + std::to_string(l.ranks) + l.flags.substr(l.flags.find_last_of(' ') + 1);
    const std::string log = out + ".log";
    const int rc = shell(mpirun(l.ranks) + ditrun_binary() + " run " + jobs.model + " --jobs " + jobs.jobs + " --out " +
                             out + " " + l.flags,
                         log);
    EXPECT_NE(rc, 0) << label << ": the bad job must fail the run\n" << slurp(log);
    const std::string failed = "1 of " + std::to_string(jobs.done.size()) + " job(s) failed";
    EXPECT_NE(slurp(log).find(failed), std::string::npos) << label << "\n" << slurp(log);
    jobs.expect_same(out, label);
  }
}

// Layouts that share one job's step over ranks (sequence and CFG parallelism) split sums
// differently: their latents agree with the single-process run within 1e-5 instead of bit for
// bit (the previews, quantized to 8 bits, are not compared), and the ledger is the same.
void check_shared_layouts(const Jobs& jobs, const std::vector<Layout>& layouts) {
  ASSERT_FALSE(jobs.reference.empty());
  for (const Layout& l : layouts) {
    const std::string label = std::to_string(l.ranks) + " ranks " + l.flags;
    std::string name = l.flags;
    for (char& c : name)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    const std::string out = jobs.dir + "/np" + std::to_string(l.ranks) + name, log = out + ".log";
    const int rc = shell(mpirun(l.ranks) + ditrun_binary() + " run " + jobs.model + " --jobs " + jobs.jobs + " --out " +
                             out + " " + l.flags,
                         log);
    EXPECT_NE(rc, 0) << label << ": the bad job must fail the run\n" << slurp(log);
    std::map<std::string, bool> got;
    for (const auto& e : launcher::read_ledger(out).entries) got[e.id] = e.done();
    EXPECT_EQ(got, jobs.done) << label << "\n" << slurp(log);
    for (const auto& [file, bytes] : jobs.reference) {
      if (!file.ends_with(".safetensors")) continue;
      const std::string reference = jobs.dir + "/single/" + file;
      ASSERT_TRUE(std::filesystem::exists(out + "/" + file)) << label << ": " << file << "\n" << slurp(log);
      const double diff = max_abs_diff(models::read_host_tensors(out + "/" + file).at("latent"),
                                       models::read_host_tensors(reference).at("latent"));
      std::printf("[ shared   ] %s: %s max |latent - one rank| = %.2e\n", label.c_str(), file.c_str(), diff);
      EXPECT_LT(diff, 1e-5) << label << ": " << file;
    }
  }
}

TEST(DistributedRun, FluxWithSharedStepsAgreesWithOneRank) {
  const Jobs jobs("flux-tiny-dev", "--threads 1");
  // 4 heads: Ulysses at 2 and 4, ring attention at 3 (with padding) and when asked for (ring 2
  // inside SP 4: Ulysses 2 x ring 2); a team inside each stage of a pipeline and in each of two
  // replicas; a CFG team that has no CFG to split.
  check_shared_layouts(jobs, {{2, "--sp 2"},
                              {3, "--sp 3"},
                              {4, "--sp 4"},
                              {4, "--sp 4 --ring 2"},
                              {4, "--mode pipeline --sp 2"},
                              {4, "--mode replicas --sp 2"},
                              {2, "--cfg-parallel"}});
}

TEST(DistributedRun, WanWithSharedStepsAgreesWithOneRank) {
  const Jobs jobs("wan21-tiny-t2v", "--threads 1");
  check_shared_layouts(jobs, {{2, "--sp 2"}, {3, "--sp 3"}, {2, "--cfg-parallel"}, {4, "--cfg-parallel --sp 2"}});
}

// Larger than the reference cases: a synthetic Wan (dim 256, 8 heads, 4 layers, 64 text
// tokens) on a 9-frame 128x128 video (3 x 8 x 8 = 192 video tokens), under mpirun: Ulysses 4,
// Ulysses 2 x ring 2, a ring of 3 (8 heads over 3 ranks, 192 tokens padded to 195), CFG halves
// with SP 2. Its latents reach |7.4|, where f32 steps are ~5e-7 and two Euler steps through
// four blocks amplify a reordered sum to ~1e-5: the bound is 1e-5 relative to the largest
// value (measured here: 0 for Ulysses and CFG, 1.2e-5 absolute = 1.6e-6 relative for rings).
TEST(DistributedRun, LargerWanWithSharedStepsAgreesWithOneRank) {
  const std::string dir = temp_dir("dist-large-wan");
  {
    std::ofstream config(dir + "/wan.json");
    config << R"({"architecture": "wan", "params": {"model_type": "t2v", "patch_size": [1, 2, 2], "freq_dim": 256,
      "qk_norm": true, "cross_attn_norm": true, "eps": 1e-06, "text_len": 64, "in_dim": 16, "dim": 256,
      "ffn_dim": 512, "text_dim": 128, "out_dim": 16, "num_heads": 8, "num_layers": 4},
      "sampling": {"steps": "2", "shift": "5.0", "guidance": "0", "cfg": "4.0"}})";
  }
  ASSERT_EQ(shell(ditrun_binary() + " synth --arch wan --preset " + dir + "/wan.json --weights bf16 --seed 3 --out " +
                      dir + "/wan.safetensors",
                  dir + "/log-synth"),
            0)
      << slurp(dir + "/log-synth");
  const HostTensor context = runtime::seeded_noise(5, {40, 128}), negative = runtime::seeded_noise(6, {40, 128});
  models::write_host_tensors(dir + "/cond.safetensors", {{"context", &context}, {"context_neg", &negative}});
  {
    std::ofstream jobs(dir + "/jobs.jsonl");
    jobs << R"({"id": "v", "cond": "cond.safetensors", "seed": 9, "width": 128, "height": 128, "frames": 9})" << "\n";
  }
  const std::string run = ditrun_binary() + " run " + dir + "/wan.safetensors --threads 1 --jobs " + dir + "/jobs.jsonl";
  ASSERT_EQ(shell(run + " --out " + dir + "/one", dir + "/log-one"), 0) << slurp(dir + "/log-one");
  const HostTensor one = models::read_host_tensors(dir + "/one/v.safetensors").at("latent");
  for (const auto& [ranks, flags] : std::vector<std::pair<int, std::string>>{
           {4, "--sp 4"}, {4, "--sp 4 --ring 2"}, {3, "--sp 3"}, {4, "--sp 2 --cfg-parallel"}}) {
    std::string name = flags;
    for (char& c : name)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    const std::string out = dir + "/np" + name;
    ASSERT_EQ(shell(mpirun(ranks) + run + " --out " + out + " " + flags, out + ".log"), 0) << flags << "\n"
                                                                                         << slurp(out + ".log");
    const double diff = max_abs_diff(models::read_host_tensors(out + "/v.safetensors").at("latent"), one);
    double largest = 0;
    for (float v : one.data) largest = std::max(largest, double(std::abs(v)));
    std::printf("[ shared   ] larger Wan, %d ranks %s: max |latent - one rank| = %.2e (largest |latent| %.2f)\n", ranks,
                flags.c_str(), diff, largest);
    EXPECT_LT(diff, 1e-5 * std::max(1.0, largest)) << flags;
  }
}

TEST(DistributedRun, SharedStepsThatCannotBeFormedAreRefused) {
  const std::string dir = temp_dir("dist-bad-teams");
  // The built-in model and conditioning.
  const std::string run = ditrun_binary() + " run --threads 1 --steps 1 --out " + dir + "/out ";
  EXPECT_EQ(shell(mpirun(3) + run + "--width 32 --height 32 --sp 2", dir + "/log-ranks"), 2);
  EXPECT_NE(slurp(dir + "/log-ranks").find("makes teams of 2 ranks, which 3 ranks cannot form"), std::string::npos)
      << slurp(dir + "/log-ranks");
  EXPECT_EQ(shell(mpirun(4) + run + "--width 32 --height 32 --sp 4 --ring 3", dir + "/log-ring"), 2);
  EXPECT_NE(slurp(dir + "/log-ring").find("--ring 3 with --sp 4: the ring must divide the sequence ranks"),
            std::string::npos)
      << slurp(dir + "/log-ring");
  EXPECT_NE(shell(mpirun(2) + run + "--width 32 --height 32 --sp 2 --cfg-parallel", dir + "/log-four"), 0) << "2 ranks cannot form a team of 4";
  // A Flux job of 16x16 pixels is one image token (a 2x2 latent patch): nothing to split.
  EXPECT_EQ(shell(mpirun(2) + run + "--width 16 --height 16 --sp 2", dir + "/log-tokens"), 2);
  EXPECT_NE(slurp(dir + "/log-tokens").find("--sp 2 splits a job's image tokens over 2 ranks, but the largest job "
                                            "(16x16) has 1"),
            std::string::npos)
      << slurp(dir + "/log-tokens");
  EXPECT_NE(shell(run + "--width 32 --height 32 --sp 2", dir + "/log-one"), 0);
  EXPECT_NE(slurp(dir + "/log-one").find("start it with mpirun -np N"), std::string::npos) << slurp(dir + "/log-one");
}

TEST(DistributedRun, FluxUnderMpirunIsBitIdenticalInEveryLayout) {
  const Jobs jobs("flux-tiny-dev", "--threads 1");
  check_layouts(jobs, {{1, "--mode auto"},
                       {2, "--mode pipeline"},
                       {2, "--mode replicas"},
                       {3, "--mode pipeline"},
                       {3, "--mode replicas"},
                       {4, "--mode pipeline"},
                       {4, "--mode replicas --stages 2"}});
}

TEST(DistributedRun, WanWithCfgUnderMpirunIsBitIdentical) {
  const Jobs jobs("wan21-tiny-t2v", "--threads 1");
  check_layouts(jobs, {{2, "--mode pipeline"}, {3, "--mode replicas"}, {4, "--mode replicas --stages 2"}});
}

TEST(DistributedRun, RanksAsThreadsRunTheSameProtocol) {
  const Jobs jobs("flux-tiny-dev", "--threads 1");
  launcher::DistributedRun run;
  run.model = testdata("reference/flux-tiny-dev.safetensors");
  run.config = testdata("reference/flux-tiny-dev.config.json");
  run.out = jobs.dir + "/threads";
  run.jobs_file = jobs.jobs;
  run.lines = launcher::parse_job_file(jobs.jobs);
  run.backend.threads = 1;
  run.devices.mode = "replicas";
  run.devices.stages = 2;
  auto channels = transport::make_local_channels(4);
  std::vector<std::thread> ranks;
  std::vector<std::string> errors(4);
  launcher::DistributedOutcome outcome;
  for (int r = 0; r < 4; ++r)
    ranks.emplace_back([&, r] {
      try {
        const auto o = launcher::run_distributed(*channels[size_t(r)], run);
        if (r == 0) outcome = o;
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  for (int r = 0; r < 4; ++r) EXPECT_EQ(errors[size_t(r)], "") << "rank " << r;
  EXPECT_EQ(outcome.run, jobs.done.size());
  EXPECT_EQ(outcome.failed, 1u);
  jobs.expect_same(run.out, "4 threads, 2 groups of 2 stages");
}

}  // namespace
}  // namespace ditrun::test

namespace ditrun::test {
namespace {

// Many jobs, long enough that a rank can be killed while some are in flight.
std::string many_jobs(const std::string& dir, int count) {
  const auto io = models::read_host_tensors(testdata("reference/flux-tiny-dev.io.safetensors"));
  const HostTensor txt = batch_item(io.at("in.txt"), 0), y = batch_item(io.at("in.y"), 0);
  models::write_host_tensors(dir + "/cond.safetensors", {{"txt", &txt}, {"y", &y}});
  std::ofstream out(dir + "/jobs.jsonl");
  for (int i = 0; i < count; ++i)
    out << R"({"id": "j)" << i << R"(", "cond": "cond.safetensors", "seed": )" << i
        << R"(, "width": 256, "height": 256, "steps": 40})" << "\n";
  return dir + "/jobs.jsonl";
}

bool wait_for(const std::function<bool()>& ready, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ready();
}

// Kills rank `victim` of a run over `ranks` ranks once two jobs are done: the run ends naming
// the jobs in flight (`in_flight`: where the victim's job was, as the report words it), what
// the ledger says is done is on disk, and --resume renders exactly the rest, each job once.
void kill_and_resume(const std::string& name, int ranks, const std::string& flags, int victim,
                     const std::string& in_flight) {
  const std::string dir = temp_dir(name), out = dir + "/out", log = dir + "/log", rc_file = dir + "/rc";
  const std::string base = testdata("reference/flux-tiny-dev");
  const std::string model = base + ".safetensors --config " + base + ".config.json --threads 1";
  const std::string jobs = many_jobs(dir, 16);
  ASSERT_EQ(std::system(("(" + mpirun(ranks) + ditrun_binary() + " run " + model + " --jobs " + jobs + " --out " + out +
                         " " + flags + " > " + log + " 2>&1; echo $? > " + rc_file + ") &")
                            .c_str()),
            0);
  // The victim's pid from its first log line, then kill it once two jobs are done.
  const std::string started = "rank " + std::to_string(victim) + " of " + std::to_string(ranks) + " on ";
  int pid = 0;
  ASSERT_TRUE(wait_for(
      [&] {
        const std::string text = slurp(log);
        const auto at = text.find(started);
        if (at == std::string::npos) return false;
        const auto p = text.find("(pid ", at);
        return p != std::string::npos && (pid = std::atoi(text.c_str() + p + 5)) > 0;
      },
      60))
      << slurp(log);
  ASSERT_TRUE(wait_for([&] { return launcher::read_ledger(out).entries.size() >= 2; }, 60)) << slurp(log);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(wait_for([&] { return !slurp(rc_file).empty(); }, 60)) << slurp(log);
  EXPECT_NE(std::atoi(slurp(rc_file).c_str()), 0);
  const std::string text = slurp(log);
  EXPECT_NE(text.find("Gone: rank " + std::to_string(victim) + " (pid " + std::to_string(pid) + ")"), std::string::npos)
      << text;
  EXPECT_NE(text.find(in_flight), std::string::npos) << "the job the victim was rendering is named\n" << text;

  // What the ledger says is done is complete on disk, and nothing else is there.
  auto ledger = launcher::read_ledger(out);
  std::set<std::string> expected{"ledger.jsonl"}, present;
  for (const auto& e : ledger.entries) {
    EXPECT_TRUE(e.done()) << e.id << ": " << e.error;
    for (const auto& f : e.outputs) expected.insert(f);
  }
  for (const auto& e : std::filesystem::directory_iterator(out)) present.insert(e.path().filename().string());
  EXPECT_EQ(present, expected);
  const size_t done_before = ledger.entries.size();
  EXPECT_LT(done_before, 16u);

  // --resume renders exactly the rest; every job is done once, with the bits of an
  // uninterrupted run.
  ASSERT_EQ(shell(ditrun_binary() + " run " + model + " --jobs " + jobs + " --out " + out + " --resume", dir + "/log2"), 0)
      << slurp(dir + "/log2");
  EXPECT_NE(slurp(dir + "/log2").find("--resume: " + std::to_string(done_before) + " job(s) already done"),
            std::string::npos)
      << slurp(dir + "/log2");
  std::map<std::string, int> done_lines;
  for (const auto& e : launcher::read_ledger(out).entries) done_lines[e.id] += e.done();
  EXPECT_EQ(done_lines.size(), 16u);
  for (const auto& [id, n] : done_lines) EXPECT_EQ(n, 1) << id;
  ASSERT_EQ(shell(ditrun_binary() + " run " + model + " --jobs " + jobs + " --out " + dir + "/clean", dir + "/log3"), 0);
  for (int i = 0; i < 16; ++i) {
    const std::string f = "/j" + std::to_string(i) + ".safetensors";
    EXPECT_TRUE(slurp(out + f) == slurp(dir + "/clean" + f)) << f;
  }
}

TEST(DistributedRun, AKilledRankEndsTheRunAndResumeFinishesTheRest) {
  kill_and_resume("dist-kill", 2, "--mode replicas", 1, "on rank 1");
}

// A team member of a sequence-parallel group: two replicas of teams of two.
TEST(DistributedRun, AKilledTeamMemberEndsTheRunAndResumeFinishesTheRest) {
  kill_and_resume("dist-kill-sp", 4, "--mode replicas --sp 2", 1, "on ranks 0-1");
}

TEST(DistributedRun, ANonFiniteLatentFailsOnlyItsJob) {
  const std::string dir = temp_dir("dist-nan");
  const auto io = models::read_host_tensors(testdata("reference/flux-tiny-dev.io.safetensors"));
  HostTensor txt = batch_item(io.at("in.txt"), 0);
  const HostTensor y = batch_item(io.at("in.y"), 0);
  models::write_host_tensors(dir + "/good.safetensors", {{"txt", &txt}, {"y", &y}});
  txt.data[3] = std::numeric_limits<float>::quiet_NaN();
  models::write_host_tensors(dir + "/nan.safetensors", {{"txt", &txt}, {"y", &y}});
  {
    std::ofstream jobs(dir + "/jobs.jsonl");
    jobs << R"({"id": "good", "cond": "good.safetensors", "seed": 1, "width": 64, "height": 64, "steps": 2})" << "\n"
         << R"({"id": "nan", "cond": "nan.safetensors", "seed": 1, "width": 64, "height": 64, "steps": 2})" << "\n";
  }
  const std::string base = testdata("reference/flux-tiny-dev");
  const std::string args = " run " + base + ".safetensors --config " + base + ".config.json --jobs " + dir + "/jobs.jsonl";
  for (const std::string& launch : {std::string(""), mpirun(2) + " "}) {
    const std::string out = dir + (launch.empty() ? "/single" : "/mpi");
    EXPECT_EQ(shell(launch + ditrun_binary() + args + " --out " + out + (launch.empty() ? "" : " --mode pipeline"),
                    out + ".log"),
              2)
        << slurp(out + ".log");
    std::map<std::string, launcher::LedgerEntry> entries;
    for (auto& e : launcher::read_ledger(out).entries) entries[e.id] = e;
    EXPECT_TRUE(entries["good"].done()) << out;
    EXPECT_FALSE(entries["nan"].done()) << out;
    EXPECT_NE(entries["nan"].error.find("not finite (NaN or Inf) after step 1"), std::string::npos)
        << entries["nan"].error;
  }
}

}  // namespace
}  // namespace ditrun::test

namespace ditrun::test {
namespace {

TEST(DistributedRun, AJobWithItsOwnConfigFailsUnderMpirunInsteadOfUsingTheWrongOne) {
  const std::string dir = temp_dir("dist-config");
  const std::string base = testdata("reference/flux-tiny-dev");
  const auto io = models::read_host_tensors(base + ".io.safetensors");
  const HostTensor txt = batch_item(io.at("in.txt"), 0), y = batch_item(io.at("in.y"), 0);
  models::write_host_tensors(dir + "/cond.safetensors", {{"txt", &txt}, {"y", &y}});
  std::filesystem::copy_file(base + ".config.json", dir + "/other.json");
  {
    std::ofstream jobs(dir + "/jobs.jsonl");
    jobs << R"({"id": "same", "cond": "cond.safetensors", "seed": 1, "width": 32, "height": 32, "steps": 1})" << "\n"
         << R"({"id": "own", "cond": "cond.safetensors", "seed": 1, "width": 32, "height": 32, "steps": 1, "config": "other.json"})"
         << "\n";
  }
  const std::string out = dir + "/out";
  EXPECT_NE(shell(mpirun(2) + ditrun_binary() + " run " + base + ".safetensors --config " + base + ".config.json --jobs " +
                      dir + "/jobs.jsonl --out " + out,
                  dir + "/log"),
            0);
  std::map<std::string, launcher::LedgerEntry> entries;
  for (auto& e : launcher::read_ledger(out).entries) entries[e.id] = e;
  EXPECT_TRUE(entries["same"].done()) << slurp(dir + "/log");
  EXPECT_FALSE(entries["own"].done());
  EXPECT_NE(entries["own"].error.find("a job's own 'config' needs a single-process run"), std::string::npos)
      << entries["own"].error;
}

}  // namespace
}  // namespace ditrun::test

namespace ditrun::test {
namespace {

// One process runs a job with its own config on that config's model (the executor is started
// once per run of consecutive jobs with the same config), and gives it the bits of a run made
// with that --config alone.
TEST(DistributedRun, OneProcessRunsEachJobOnItsOwnConfig) {
  const std::string dir = temp_dir("one-process-configs");
  const std::string base = testdata("reference/flux-tiny-dev");
  const auto io = models::read_host_tensors(base + ".io.safetensors");
  const HostTensor txt = batch_item(io.at("in.txt"), 0), y = batch_item(io.at("in.y"), 0);
  models::write_host_tensors(dir + "/cond.safetensors", {{"txt", &txt}, {"y", &y}});
  // The same weights with one default sampler step instead of three.
  nlohmann::json config = nlohmann::json::parse(slurp(base + ".config.json"));
  config["sampling"]["steps"] = "1";
  std::ofstream(dir + "/one-step.json") << config.dump();
  const std::string job = R"("cond": "cond.safetensors", "seed": 4, "width": 32, "height": 32)";
  {
    std::ofstream jobs(dir + "/jobs.jsonl");
    jobs << R"({"id": "a", )" << job << "}\n"
         << R"({"id": "own", )" << job << R"(, "config": "one-step.json"})" << "\n"
         << R"({"id": "b", )" << job << "}\n";
    std::ofstream alone(dir + "/alone.jsonl");
    alone << R"({"id": "own", )" << job << "}\n";
  }
  const std::string model = base + ".safetensors --threads 1 --config ";
  ASSERT_EQ(shell(ditrun_binary() + " run " + model + base + ".config.json --jobs " + dir + "/jobs.jsonl --out " + dir +
                      "/mixed",
                  dir + "/log"),
            0)
      << slurp(dir + "/log");
  ASSERT_EQ(shell(ditrun_binary() + " run " + model + dir + "/one-step.json --jobs " + dir + "/alone.jsonl --out " + dir +
                      "/alone",
                  dir + "/log-alone"),
            0)
      << slurp(dir + "/log-alone");
  std::map<std::string, launcher::LedgerEntry> entries;
  for (auto& e : launcher::read_ledger(dir + "/mixed").entries) entries[e.id] = e;
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries["a"].steps, 3);
  EXPECT_EQ(entries["own"].steps, 1);
  EXPECT_EQ(entries["b"].steps, 3);
  EXPECT_TRUE(slurp(dir + "/mixed/own.safetensors") == slurp(dir + "/alone/own.safetensors"));
  // Same job, same model before and after the other config's segment (the ids in the files differ).
  EXPECT_EQ(models::read_host_tensors(dir + "/mixed/a.safetensors").at("latent").data,
            models::read_host_tensors(dir + "/mixed/b.safetensors").at("latent").data);
}

}  // namespace
}  // namespace ditrun::test
