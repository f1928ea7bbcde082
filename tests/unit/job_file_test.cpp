// jobs.jsonl parsing: a full job, path resolution, skipped lines, and every error path,
// each of which must name the file, the line and (when it has one) the job.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "launcher/job_file.h"
#include "runtime/core/error.h"
#include "test_paths.h"


namespace ditrun::launcher {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<JobLine> parse(const std::string& text, const std::string& base_dir = "/jobs") {
  return parse_job_text(text, "jobs.jsonl", base_dir);
}

// The one error of a one-line file.
std::string error_of(const std::string& line) {
  const auto lines = parse(line);
  EXPECT_EQ(lines.size(), 1u);
  if (lines.size() != 1) return "";
  EXPECT_FALSE(lines[0].ok()) << line;
  EXPECT_EQ(lines[0].error.find('\n'), std::string::npos);
  return lines[0].error;
}

TEST(JobFile, ParsesAFullJob) {
  const auto lines = parse(
      R"({"id": "cat-01.v2_a", "cond": "cond/cat.safetensors", "width": 1024, "height": 768, "frames": 81,)"
      R"( "seed": 18446744073709551615, "steps": 28, "sampler": "euler", "shift": 3.0, "guidance": 3.5,)"
      R"( "cfg": 1, "config": "/models/flux.config.json"})");
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_TRUE(lines[0].ok()) << lines[0].error;
  const Job& j = *lines[0].job;
  EXPECT_EQ(j.id, "cat-01.v2_a");
  EXPECT_EQ(lines[0].id, "cat-01.v2_a");
  EXPECT_EQ(j.cond, "/jobs/cond/cat.safetensors");
  EXPECT_EQ(j.width, 1024);
  EXPECT_EQ(j.height, 768);
  EXPECT_EQ(j.frames, 81);
  EXPECT_EQ(j.seed, UINT64_MAX);
  EXPECT_FALSE(j.noise);
  EXPECT_EQ(j.steps, 28);
  EXPECT_EQ(j.sampler, "euler");
  EXPECT_EQ(j.shift, runtime::Shift::constant(3));
  EXPECT_EQ(j.guidance, 3.5);
  EXPECT_EQ(j.cfg, 1.0);
  EXPECT_EQ(j.config, "/models/flux.config.json");  // absolute paths stay as given
  EXPECT_EQ(j.line, 1);
}

TEST(JobFile, OptionalKeysStayUnset) {
  const auto lines = parse(R"({"id": "n", "cond": "c.safetensors", "noise": "../n.safetensors"})");
  ASSERT_TRUE(lines.at(0).ok()) << lines[0].error;
  const Job& j = *lines[0].job;
  EXPECT_EQ(j.noise, "/n.safetensors");  // ../ from /jobs
  EXPECT_FALSE(j.width || j.height || j.frames || j.seed || j.steps || j.shift || j.guidance || j.cfg || j.config);
  EXPECT_FALSE(j.sampler) << "the model's sampler";
}

TEST(JobFile, ShiftTakesNumbersAndNames) {
  const auto shift_of = [](const std::string& value) {
    const auto lines = parse(R"({"id": "a", "cond": "c", "seed": 1, "width": 64, "height": 64, "shift": )" + value + "}");
    EXPECT_TRUE(lines.at(0).ok()) << lines[0].error;
    return lines[0].ok() ? *lines[0].job->shift : runtime::Shift{};
  };
  EXPECT_EQ(shift_of("5"), runtime::Shift::constant(5));
  EXPECT_EQ(shift_of(R"("5.0")"), runtime::Shift::constant(5));
  EXPECT_EQ(shift_of(R"("none")"), runtime::Shift::none());
  EXPECT_EQ(shift_of(R"("flux-dynamic")"), runtime::Shift::flux_dynamic());
}

TEST(JobFile, SkipsBlankAndCommentLinesButCountsThem) {
  const std::string text =
      "# renders for the cat series\n"
      "\n"
      "   \t\n"
      "  # indented comment\r\n"
      R"({"id": "a", "cond": "c", "seed": 1, "width": 64, "height": 64})" "\r\n"
      "\n"
      R"({"id": "b", "cond": "c", "seed": 2, "width": 64, "height": 64})";  // no final newline
  const auto lines = parse(text);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].line, 5);
  EXPECT_EQ(lines[1].line, 7);
  EXPECT_TRUE(lines[0].ok() && lines[1].ok());
  EXPECT_EQ(lines[1].job->line, 7);
  EXPECT_TRUE(parse("").empty());
  EXPECT_EQ(parse("\xEF\xBB\xBF# a byte order mark before a comment\n").size(), 0u);
}

TEST(JobFile, EveryErrorNamesLineAndJob) {
  const std::string ok = R"("cond": "c", "seed": 1, "width": 64, "height": 64)";
  struct Case {
    std::string line;
    std::string what;
  };
  const std::vector<Case> cases{
      {R"({"id": "j", )" + ok + R"(, "stpes": 20})", "unknown key 'stpes'"},
      {R"({"id": "j", )" + ok + R"(, "seed": 2})", "key 'seed' given twice"},
      {R"({"id": "j", )" + ok + R"(, "steps": 0})", "steps: must be an integer from 1 to 10000, got 0"},
      {R"({"id": "j", )" + ok + R"(, "steps": 2.5})", "steps: must be an integer, got 2.5"},
      {R"({"id": "j", )" + ok + R"(, "steps": "20"})", "steps: must be an integer, got string"},
      {R"({"id": "j", )" + ok + R"(, "frames": 0})", "frames: must be an integer from 1"},
      {R"({"id": "j", )" + ok + R"(, "sampler": "ddim"})", "sampler: 'ddim' is not available (available: euler, unipc, dpm++, dpmpp_2m, uni_pc, uni_pc_bh2)"},
      {R"({"id": "j", )" + ok + R"(, "shift": "fast"})", "shift 'fast': expected"},
      {R"({"id": "j", )" + ok + R"(, "shift": 0})", "shift 0: must be a positive number"},
      {R"({"id": "j", )" + ok + R"(, "shift": -1.5})", "shift -1.5: must be a positive number"},
      {R"({"id": "j", )" + ok + R"(, "shift": true})", "shift: must be a number, \"none\", \"flux-dynamic\" or \"qwen-dynamic\", got boolean"},
      {R"({"id": "j", )" + ok + R"(, "cfg": -1})", "cfg: must be a number >= 0 (1 = off), got -1"},
      {R"({"id": "j", )" + ok + R"(, "guidance": "3.5"})", "guidance: must be a number, got string"},
      {R"({"id": "j", )" + ok + R"(, "config": 7})", "config: must be a string, got number"},
      {R"({"id": "j", )" + ok + R"(, "noise": "n.safetensors"})", "seed and noise: give one, not both"},
      {R"({"id": "j", "cond": "c", "width": 64, "height": 64})", "seed or noise: one is needed"},
      {R"({"id": "j", "cond": "c", "seed": -1, "width": 64, "height": 64})", "seed: must be an integer >= 0, got -1"},
      {R"({"id": "j", "cond": "c", "seed": 1.5, "width": 64, "height": 64})", "seed: must be an integer >= 0, got 1.5"},
      {R"({"id": "j", "cond": "c", "seed": 1, "width": 64})", "width and height: give both or neither"},
      {R"({"id": "j", "cond": "c", "seed": 1})", "width and height: missing"},
      {R"({"id": "j", "cond": "c", "seed": 1, "width": 0, "height": 64})", "width: must be an integer from 1 to 16384, got 0"},
      {R"({"id": "j", "cond": "c", "seed": 1, "width": 64, "height": 99999})", "height: must be an integer from 1 to 16384"},
      {R"({"id": "j", "cond": "c", "seed": 1, "width": 64, "height": null})", "height: must be an integer, got null"},
      {R"({"id": "j", "seed": 1, "width": 64, "height": 64})", "prompt or cond: one is needed"},
      {R"({"id": "j", "cond": "", "seed": 1, "width": 64, "height": 64})", "prompt or cond: one is needed"},
      {R"({"id": "j", "cond": "c", "prompt": "a fox", "seed": 1, "width": 64, "height": 64})",
       "prompt and cond: give one, not both"},
      {R"({"id": "j", "cond": "c", "negative_prompt": "blur", "seed": 1, "width": 64, "height": 64})",
       "negative_prompt: goes with a prompt"},
      {R"({"id": "j", "prompt": 5, "seed": 1, "width": 64, "height": 64})", "prompt: must be a string, got number"},
      {R"({"id": "j", "cond": "c", "noise": "", "width": 64, "height": 64})", "noise: empty path"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.line);
    EXPECT_THAT(e, StartsWith("jobs.jsonl:1: job 'j': ")) << c.line;
    EXPECT_THAT(e, HasSubstr(c.what)) << c.line;
  }
}

TEST(JobFile, PromptsAreJobsToo) {
  const auto lines = parse_job_text(
      R"({"id": "a", "prompt": "a red fox", "negative_prompt": "blurry", "seed": 1, "width": 64, "height": 64})"
      "\n"
      R"({"id": "b", "prompt": "", "seed": 2, "width": 64, "height": 64})",
      "jobs.jsonl", "");
  ASSERT_EQ(lines.size(), 2u);
  ASSERT_TRUE(lines[0].ok()) << lines[0].error;
  ASSERT_TRUE(lines[1].ok()) << lines[1].error << " (an empty prompt is a prompt)";
  EXPECT_EQ(lines[0].job->prompt, "a red fox");
  EXPECT_EQ(lines[0].job->negative_prompt, "blurry");
  EXPECT_TRUE(lines[0].job->cond.empty());
  EXPECT_EQ(lines[1].job->prompt, "");
  const Job back = parse_job_object(job_to_json(*lines[0].job), "");
  EXPECT_EQ(back.prompt, lines[0].job->prompt);
  EXPECT_EQ(back.negative_prompt, lines[0].job->negative_prompt);
  EXPECT_FALSE(job_to_json(*lines[0].job).contains("cond"));
}

TEST(JobFile, IdErrors) {
  const std::string rest = R"("cond": "c", "seed": 1, "width": 64, "height": 64})";
  // Without a readable id the error has no job part.
  EXPECT_EQ(error_of("{" + rest), "jobs.jsonl:1: id: missing (every job needs an id; it names the output files)");
  EXPECT_EQ(error_of(R"({"id": 5, )" + rest), "jobs.jsonl:1: id: must be a string, got number");
  EXPECT_THAT(error_of(R"({"id": "a/b", )" + rest),
              StartsWith("jobs.jsonl:1: job 'a/b': id: character '/' not allowed"));
  EXPECT_THAT(error_of(R"({"id": "a b", )" + rest), HasSubstr("character ' ' not allowed"));
  EXPECT_THAT(error_of(R"({"id": "..", )" + rest), HasSubstr("id: must not start with '.'"));
  EXPECT_THAT(error_of(R"({"id": "", )" + rest), HasSubstr("id: missing"));
  EXPECT_THAT(error_of(R"({"id": "x", "cond": "c", "seed": 1, "width": 64, "height": 64, "id": "y"})"),
              HasSubstr("key 'id' given twice"));
  // Control characters are escaped so that the error stays one line.
  EXPECT_EQ(error_of(R"({"id": "a\nb", )" + rest),
            "jobs.jsonl:1: job 'a\\x0Ab': id: character '\\x0A' not allowed; ids use only A-Z a-z 0-9 . _ - since they "
            "name files");
}

TEST(JobFile, MalformedLinesNameTheLine) {
  EXPECT_THAT(error_of(R"({"id": "a", "cond": )"), StartsWith("jobs.jsonl:1: not valid JSON: parse error at column"));
  EXPECT_THAT(error_of(R"({"id": "a"} trailing)"), StartsWith("jobs.jsonl:1: not valid JSON"));
  EXPECT_EQ(error_of(R"(["id", "a"])"), "jobs.jsonl:1: a job must be a JSON object, got array");
  EXPECT_EQ(error_of("42"), "jobs.jsonl:1: a job must be a JSON object, got number");
}

TEST(JobFile, ABadLineDoesNotStopTheOthers) {
  const std::string text =
      R"({"id": "a", "cond": "c", "seed": 1, "width": 64, "height": 64})" "\n"
      R"({"id": "b", "cond": "c", "seed": 1, "width": 64, "height": 64, "colour": "red"})" "\n"
      "{not json\n"
      R"({"id": "c", "cond": "c", "seed": 1, "width": 64, "height": 64})" "\n"
      R"({"id": "a", "cond": "c", "seed": 2, "width": 64, "height": 64})" "\n"
      R"({"id": "b", "cond": "c", "seed": 2, "width": 64, "height": 64})" "\n";
  const auto lines = parse(text);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_TRUE(lines[0].ok());
  EXPECT_THAT(lines[1].error, StartsWith("jobs.jsonl:2: job 'b': unknown key 'colour'"));
  EXPECT_THAT(lines[2].error, StartsWith("jobs.jsonl:3: not valid JSON"));
  EXPECT_TRUE(lines[3].ok());
  EXPECT_EQ(lines[4].error, "jobs.jsonl:5: job 'a': duplicate id (first used on line 1)");
  // An id stays taken even when its first line was invalid.
  EXPECT_EQ(lines[5].error, "jobs.jsonl:6: job 'b': duplicate id (first used on line 2)");
  EXPECT_EQ(lines[1].id, "b");
}

TEST(JobFile, RelativePathsResolveAgainstTheFilesFolder) {
  const std::string dir = test::temp_dir("job_file");
  std::filesystem::create_directories(dir + "/batch");
  const std::string path = dir + "/batch/jobs.jsonl";
  std::ofstream(path) << R"({"id": "a", "cond": "cond/a.safetensors", "noise": "../noise/a.safetensors",)"
                      << R"( "config": "/abs/c.json"})" << "\n"
                      << R"({"id": "a", "cond": "x", "seed": 1, "width": 8, "height": 8})" << "\n";
  const auto lines = parse_job_file(path);
  ASSERT_EQ(lines.size(), 2u);
  ASSERT_TRUE(lines[0].ok()) << lines[0].error;
  EXPECT_EQ(lines[0].job->cond, dir + "/batch/cond/a.safetensors");
  EXPECT_EQ(lines[0].job->noise, dir + "/noise/a.safetensors");
  EXPECT_EQ(lines[0].job->config, "/abs/c.json");
  EXPECT_THAT(lines[1].error, StartsWith(path + ":2: job 'a': duplicate id"));

  // A job file in the current directory keeps relative paths relative.
  EXPECT_EQ(parse(R"({"id": "a", "cond": "c.safetensors", "seed": 1, "width": 8, "height": 8})", "").at(0).job->cond,
            "c.safetensors");
  try {
    parse_job_file(dir + "/missing.jsonl");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir + "/missing.jsonl"));
  }
}

TEST(JobFile, FlagJobsPassTheSameValidation) {
  Job job;  // as `ditrun run --id ... --cond ...` would build it
  job.id = "single";
  job.cond = "c.safetensors";
  job.seed = 0;
  job.width = 512;
  job.height = 512;
  EXPECT_NO_THROW(validate_job(job));
  job.steps = 0;
  EXPECT_THROW(validate_job(job), Error);
  job.steps = 4;
  job.shift = runtime::Shift{runtime::Shift::Constant, -2};  // built by hand, bypassing parse
  EXPECT_THROW(validate_job(job), Error);
  job.shift.reset();
  job.cfg = std::nan("");
  EXPECT_THROW(validate_job(job), Error);
  job.cfg.reset();
  job.noise = "n.safetensors";
  try {
    validate_job(job);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "seed and noise: give one, not both");
  }
}

}  // namespace
}  // namespace ditrun::launcher
