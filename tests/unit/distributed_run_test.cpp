// `ditrun run` over several ranks gives the same bits as one process: under mpirun with 1 to
// 4 ranks (--oversubscribe, CPU backend) as pipelines, replicas and replicas of pipelines,
// every output file equals the single-process run's and the ledger records the same jobs as
// done and failed; and the same protocol with ranks as threads (local channels).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "launcher/distributed_run.h"
#include "launcher/ledger.h"
#include "models/pipeline/tensor_files.h"
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
    for (const auto& e : launcher::read_ledger(ref).entries) done[e.id] = e.done;
  }

  void expect_same(const std::string& out, const std::string& label) const {
    for (const auto& [file, bytes] : reference) EXPECT_TRUE(slurp(out + "/" + file) == bytes) << label << ": " << file;
    size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(out)) files += e.path().filename() != "ledger.jsonl";
    EXPECT_EQ(files, reference.size()) << label;
    std::map<std::string, bool> got;
    for (const auto& e : launcher::read_ledger(out).entries) got[e.id] = e.done;
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
