// The run ledger: appended lines and their fields, the --resume set (last status wins,
// outputs must still exist), and recovery from a line torn by a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "launcher/ledger.h"
#include "runtime/core/error.h"
#include "test_paths.h"


namespace ditrun::launcher {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

void touch(const std::string& path) { std::ofstream(path) << "x"; }

LedgerEntry done(const std::string& id, std::vector<std::string> outputs) {
  LedgerEntry e;
  e.id = id;
  e.status = LedgerStatus::done;
  e.seconds = 12.3456;
  e.steps = 4;
  e.outputs = std::move(outputs);
  return e;
}

LedgerEntry failed(const std::string& id, const std::string& error) {
  LedgerEntry e;
  e.id = id;
  e.error = error;
  e.seconds = 0.5;
  return e;
}

std::vector<std::string> file_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(Ledger, AppendsOneJsonLinePerJob) {
  const std::string dir = test::temp_dir("ledger_append");
  append_ledger(dir, done("a", {"a.safetensors", "a.png"}));
  append_ledger(dir, failed("b", "cond.safetensors: tensor 'txt' missing"));
  const auto lines = file_lines(dir + "/ledger.jsonl");
  ASSERT_EQ(lines.size(), 2u);

  const auto a = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(a["id"], "a");
  EXPECT_EQ(a["status"], "done");
  EXPECT_FALSE(a.contains("error"));
  EXPECT_DOUBLE_EQ(a["seconds"].get<double>(), 12.346);
  EXPECT_EQ(a["steps"], 4);
  EXPECT_DOUBLE_EQ(a["seconds_per_step"].get<double>(), 3.086);
  EXPECT_EQ(a["outputs"], nlohmann::json({"a.safetensors", "a.png"}));
  EXPECT_TRUE(std::regex_match(a["finished_at"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << a["finished_at"];

  const auto b = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(b["status"], "failed");
  EXPECT_EQ(b["error"], "cond.safetensors: tensor 'txt' missing");
  EXPECT_EQ(b["steps"], 0);
  EXPECT_EQ(b["seconds_per_step"], 0.0);
  EXPECT_EQ(b["outputs"], nlohmann::json::array());

  const LedgerContents read = read_ledger(dir);
  EXPECT_THAT(read.warnings, IsEmpty());
  ASSERT_EQ(read.entries.size(), 2u);
  EXPECT_EQ(read.entries[0].id, "a");
  EXPECT_TRUE(read.entries[0].done());
  EXPECT_EQ(read.entries[0].outputs, (std::vector<std::string>{"a.safetensors", "a.png"}));
  EXPECT_EQ(read.entries[0].finished_at, a["finished_at"]);
  EXPECT_FALSE(read.entries[1].done());
  EXPECT_EQ(read.entries[1].error, "cond.safetensors: tensor 'txt' missing");
}

TEST(Ledger, KeepsAGivenFinishTime) {
  const std::string dir = test::temp_dir("ledger_time");
  LedgerEntry e = done("a", {});
  e.finished_at = "2025-01-02T03:04:05Z";
  append_ledger(dir, e);
  EXPECT_EQ(read_ledger(dir).entries.at(0).finished_at, "2025-01-02T03:04:05Z");
}

TEST(Ledger, ResumeSetTakesTheLastLineOfEachJob) {
  const std::string dir = test::temp_dir("ledger_resume");
  EXPECT_THAT(completed_jobs(dir), IsEmpty());  // no ledger yet
  for (const char* f : {"a.png", "b.png", "c.png", "d.png"}) touch(dir + "/" + f);
  append_ledger(dir, done("a", {"a.png"}));
  append_ledger(dir, failed("b", "out of memory"));
  append_ledger(dir, done("b", {"b.png"}));       // retried and done: completed
  append_ledger(dir, done("c", {"c.png"}));
  append_ledger(dir, failed("c", "disk full"));   // re-run failed: not completed
  append_ledger(dir, failed("e", "bad cond"));
  append_ledger(dir, done("f", {}));              // nothing to check: completed
  append_ledger(dir, done("g", {dir + "/d.png"})); // absolute output path
  EXPECT_EQ(completed_jobs(dir), (std::set<std::string>{"a", "b", "f", "g"}));
}

TEST(Ledger, AMissingOutputMeansNotCompleted) {
  const std::string dir = test::temp_dir("ledger_missing_output");
  touch(dir + "/a.safetensors");
  touch(dir + "/a.png");
  append_ledger(dir, done("a", {"a.safetensors", "a.png"}));
  EXPECT_THAT(completed_jobs(dir), ElementsAre("a"));
  std::filesystem::remove(dir + "/a.png");
  EXPECT_THAT(completed_jobs(dir), IsEmpty());
}

TEST(Ledger, ATornLastLineIsIgnoredAndClosedOffByTheNextAppend) {
  const std::string dir = test::temp_dir("ledger_torn");
  touch(dir + "/a.png");
  touch(dir + "/c.png");
  append_ledger(dir, done("a", {"a.png"}));
  // A crash in the middle of writing job b's line.
  std::ofstream(dir + "/ledger.jsonl", std::ios::app) << R"({"id":"b","status":"do)";

  LedgerContents read = read_ledger(dir);
  ASSERT_EQ(read.entries.size(), 1u);
  ASSERT_EQ(read.warnings.size(), 1u);
  EXPECT_THAT(read.warnings[0], HasSubstr("ledger.jsonl:2"));
  EXPECT_THAT(read.warnings[0], HasSubstr("truncated last line"));
  EXPECT_THAT(completed_jobs(dir), ElementsAre("a"));

  // The next append starts on a fresh line, so the new entry is whole.
  append_ledger(dir, done("c", {"c.png"}));
  read = read_ledger(dir);
  ASSERT_EQ(read.entries.size(), 2u);
  EXPECT_EQ(read.entries[1].id, "c");
  ASSERT_EQ(read.warnings.size(), 1u);
  EXPECT_THAT(read.warnings[0], HasSubstr("ledger.jsonl:2"));
  EXPECT_THAT(read.warnings[0], HasSubstr("malformed"));
  EXPECT_EQ(completed_jobs(dir), (std::set<std::string>{"a", "c"}));
}

TEST(Ledger, LinesWithoutTheNeededFieldsAreSkipped) {
  const std::string dir = test::temp_dir("ledger_fields");
  std::ofstream(dir + "/ledger.jsonl") << R"({"id":"a","status":"finished"})" "\n"
                                       << R"({"status":"done"})" "\n"
                                       << R"({"id":7,"status":"done"})" "\n"
                                       << R"(["a","done"])" "\n"
                                       << "\n"
                                       << R"({"id":"ok","status":"done","outputs":[]})" "\n";
  const LedgerContents read = read_ledger(dir);
  EXPECT_EQ(read.warnings.size(), 4u);
  ASSERT_EQ(read.entries.size(), 1u);
  EXPECT_EQ(read.entries[0].id, "ok");
  EXPECT_THAT(completed_jobs(dir), ElementsAre("ok"));
}

TEST(Ledger, UnwritableLedgerFailsNamingTheFile) {
  const std::string dir = test::temp_dir("ledger_unwritable") + "/no/such/dir";
  try {
    append_ledger(dir, done("a", {}));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir + "/ledger.jsonl"));
  }
}

}  // namespace
}  // namespace ditrun::launcher
