// The serve queue without HTTP: ids, the queue bound, cancel, drain, and a restart that
// resumes exactly the jobs still queued in the ledger (the one that was running included).
#include "launcher/job_board.h"

#include <gtest/gtest.h>

#include "launcher/ledger.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun::launcher {
namespace {

Job job(const std::string& id, int64_t steps = 3) {
  Job j;
  j.id = id;
  j.cond = "/data/cond.safetensors";
  j.seed = 1;
  j.width = j.height = 64;
  j.steps = steps;
  return j;
}

TEST(JobBoardQueue, IdsBoundCancelAndDrain) {
  const std::string out = test::temp_dir("board");
  JobBoard board(out, 2, 28);
  EXPECT_EQ(board.submit(job("a")).outcome, JobBoard::Submitted::accepted);
  EXPECT_EQ(board.submit(job("a")).outcome, JobBoard::Submitted::duplicate_id);
  const auto b = board.submit(job("b"));
  EXPECT_EQ(b.outcome, JobBoard::Submitted::accepted);
  EXPECT_EQ(b.position, 2u);
  EXPECT_EQ(board.submit(job("c")).outcome, JobBoard::Submitted::queue_full);
  EXPECT_EQ(board.counters().rejected_full, 1u);

  const std::optional<JobLine> first = board.next();
  ASSERT_TRUE(first && first->ok());
  EXPECT_EQ(first->job->id, "a");
  EXPECT_EQ(board.status("a")->state, JobState::running);
  EXPECT_EQ(board.status("b")->position, 1u);
  JobState state{};
  EXPECT_EQ(board.cancel("a", &state), JobBoard::Cancelled::not_queued);
  EXPECT_EQ(state, JobState::running);
  EXPECT_EQ(board.cancel("nosuch"), JobBoard::Cancelled::unknown);
  EXPECT_EQ(board.cancel("b"), JobBoard::Cancelled::cancelled);
  EXPECT_EQ(board.status("b")->state, JobState::cancelled);
  EXPECT_FALSE(board.next());
  EXPECT_FALSE(board.exhausted());  // live: more may come

  board.progressed("a", 1, 3);
  EXPECT_EQ(board.status("a")->step, 1);
  LedgerEntry done;
  done.id = "a";
  done.status = LedgerStatus::done;
  done.steps = 3;
  done.seconds = 0.3;
  done.outputs = {"a.safetensors", "a.png"};
  append_ledger(out, done);
  board.finished(done);
  EXPECT_EQ(board.status("a")->state, JobState::done);
  EXPECT_EQ(board.counters().done, 1u);
  EXPECT_EQ(board.counters().cancelled, 1u);

  board.drain();
  EXPECT_TRUE(board.exhausted());
  EXPECT_EQ(board.submit(job("d")).outcome, JobBoard::Submitted::draining);
}

TEST(JobBoardQueue, RestartResumesQueuedAndRunningInOrder) {
  const std::string out = test::temp_dir("board-resume");
  {
    JobBoard board(out, 10, 28);
    for (const char* id : {"done1", "run1", "q1", "q2", "gone"}) ASSERT_EQ(board.submit(job(id)).outcome, JobBoard::Submitted::accepted);
    ASSERT_EQ(board.next()->job->id, "done1");
    LedgerEntry done;
    done.id = "done1";
    done.status = LedgerStatus::done;
    done.steps = 3;
    append_ledger(out, done);
    board.finished(done);
    ASSERT_EQ(board.next()->job->id, "run1");  // running when the server "dies"
    ASSERT_EQ(board.cancel("gone"), JobBoard::Cancelled::cancelled);
  }
  JobBoard again(out, 10, 28);
  EXPECT_EQ(again.resume(), 3u);
  for (const char* id : {"run1", "q1", "q2"}) {
    const std::optional<JobLine> next = again.next();
    ASSERT_TRUE(next && next->ok());
    EXPECT_EQ(next->job->id, id);
    EXPECT_EQ(*next->job->steps, 3);
    EXPECT_EQ(next->job->cond, "/data/cond.safetensors");
  }
  EXPECT_FALSE(again.next());
  EXPECT_EQ(again.status("done1")->state, JobState::done);
  EXPECT_EQ(again.status("gone")->state, JobState::cancelled);
  EXPECT_EQ(again.submit(job("done1")).outcome, JobBoard::Submitted::duplicate_id);
  EXPECT_EQ(again.submit(job("gone")).outcome, JobBoard::Submitted::duplicate_id);
  // `run --resume` trusts only done lines: queued and cancelled ones are not done.
  EXPECT_EQ(completed_jobs(out), std::set<std::string>{"done1"});
}

TEST(JobBoardQueue, DefaultConditioningIsNotWrittenToTheLedger) {
  const std::string out = test::temp_dir("board-default-cond");
  {
    JobBoard board(out, 10, 28, std::string("/tmp/builtin-1/cond.safetensors"));
    Job j = job("x");
    j.cond = "/tmp/builtin-1/cond.safetensors";
    ASSERT_EQ(board.submit(j).outcome, JobBoard::Submitted::accepted);
  }
  const LedgerContents ledger = read_ledger(out);
  ASSERT_EQ(ledger.entries.size(), 1u);
  EXPECT_EQ(ledger.entries[0].status, LedgerStatus::queued);
  EXPECT_FALSE(ledger.entries[0].job.contains("cond"));
  JobBoard again(out, 10, 28, std::string("/tmp/builtin-2/cond.safetensors"));
  EXPECT_EQ(again.resume(), 1u);
  EXPECT_EQ(again.next()->job->cond, "/tmp/builtin-2/cond.safetensors");
}

TEST(JobJson, RoundTripsEveryField) {
  Job j = job("full");
  j.seed.reset();
  j.noise = "/n.safetensors";
  j.width.reset();
  j.height.reset();
  j.frames = 81;
  j.shift = runtime::Shift::constant(5.0);
  j.guidance = 3.5;
  j.cfg = 5.0;
  j.config = "/c.json";
  const nlohmann::json line = job_to_json(j);
  const Job back = parse_job_object(line, "");
  EXPECT_EQ(job_to_json(back), line);
  EXPECT_EQ(back.noise, j.noise);
  EXPECT_EQ(back.shift, j.shift);
  Job dynamic = job("d");
  dynamic.shift = runtime::Shift::flux_dynamic();
  EXPECT_EQ(parse_job_object(job_to_json(dynamic), "").shift, dynamic.shift);
  EXPECT_THROW(parse_strict_object(R"({"id": "a", "id": "b"})"), Error);
  EXPECT_THROW(parse_strict_object("[1]"), Error);
}

}  // namespace
}  // namespace ditrun::launcher
