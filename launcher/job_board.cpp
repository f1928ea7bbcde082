#include "launcher/job_board.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

// Jobs that are over stay answerable this long (by count); older ones are forgotten in memory
// but stay in the ledger, and their ids stay taken.
constexpr size_t kHistory = 100000;

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

std::string_view to_string(JobState state) {
  switch (state) {
    case JobState::queued: return "queued";
    case JobState::running: return "running";
    case JobState::done: return "done";
    case JobState::failed: return "failed";
    case JobState::cancelled: return "cancelled";
  }
  return "failed";
}

TimeHistogram::TimeHistogram(std::vector<double> upper_bounds)
    : bounds(std::move(upper_bounds)), counts(bounds.size() + 1, 0) {}

void TimeHistogram::add(double seconds) {
  const size_t bucket = size_t(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
  ++counts[bucket];
  sum += seconds;
  ++count;
}

JobBoard::JobBoard(std::string out_dir, size_t max_queued, int default_steps, std::optional<std::string> default_cond)
    : out_dir_(std::move(out_dir)),
      max_queued_(max_queued),
      default_steps_(default_steps),
      default_cond_(std::move(default_cond)) {
  if (max_queued_ == 0) fail("the queue must hold at least one job (--max-queue)");
}

size_t JobBoard::resume() {
  const LedgerContents ledger = read_ledger(out_dir_);
  for (const std::string& w : ledger.warnings) spdlog::warn("{}", w);
  std::lock_guard lock(mutex_);
  std::map<std::string, Record> latest;
  std::vector<std::string> queued_order;  // ids in the order of their "queued" lines
  for (const LedgerEntry& e : ledger.entries) {
    ids_ever_.insert(e.id);
    Record& r = latest[e.id];
    r.status.id = e.id;
    switch (e.status) {
      case LedgerStatus::queued:
        r = Record{};
        r.status.id = e.id;
        r.status.state = JobState::queued;
        r.status.job = e.job;
        r.status.submitted_at = e.submitted_at;
        queued_order.push_back(e.id);
        break;
      case LedgerStatus::done:
      case LedgerStatus::failed:
        r.status.state = e.done() ? JobState::done : JobState::failed;
        r.status.error = e.error;
        r.status.outputs = e.outputs;
        r.status.seconds = e.seconds;
        r.status.step = r.status.steps = e.steps;
        r.status.seconds_per_step = e.steps > 0 ? e.seconds / e.steps : 0;
        r.status.finished_at = e.finished_at;
        break;
      case LedgerStatus::cancelled:
        r.status.state = JobState::cancelled;
        r.status.finished_at = e.finished_at;
        break;
    }
  }
  size_t resumed = 0;
  for (const std::string& id : queued_order) {
    Record& r = latest.at(id);
    if (r.status.state != JobState::queued || r.job) continue;  // over since, or already taken
    try {
      nlohmann::json line = r.status.job;
      if (default_cond_ && !line.contains("cond") && !line.contains("prompt")) line["cond"] = *default_cond_;
      r.job = parse_job_object(line, "");
    } catch (const Error& e) {
      // A line this server wrote cannot be bad unless edited; say so and leave it be.
      spdlog::warn("{}: job '{}' cannot be queued again: {}", ledger_path(out_dir_), id, e.what());
      r.status.state = JobState::failed;
      r.status.error = e.what();
      continue;
    }
    r.status.steps = int(r.job->steps.value_or(default_steps_));
    total_steps_ += r.status.steps;
    queue_.push_back(id);
    ++resumed;
  }
  for (auto& [id, r] : latest) {
    submitted_order_[id] = order_++;
    if (r.status.state != JobState::queued) history_.push_back(id);
    jobs_.emplace(id, std::move(r));
  }
  counters_.resumed = resumed;
  forget_old_history();
  changed_.notify_all();
  return resumed;
}

JobBoard::SubmitResult JobBoard::submit(const Job& job) {
  std::lock_guard lock(mutex_);
  if (draining_) return {Submitted::draining, 0};
  if (ids_ever_.contains(job.id)) return {Submitted::duplicate_id, 0};
  if (queue_.size() >= max_queued_) {
    ++counters_.rejected_full;
    return {Submitted::queue_full, 0};
  }
  LedgerEntry line;
  line.id = job.id;
  line.status = LedgerStatus::queued;
  line.job = job_to_json(job);
  if (default_cond_ && job.cond == *default_cond_) line.job.erase("cond");
  line.submitted_at = iso8601_utc_now();
  append_ledger(out_dir_, line);  // throws: then nothing is queued

  Record r;
  r.status.id = job.id;
  r.status.state = JobState::queued;
  r.status.job = line.job;
  r.status.submitted_at = line.submitted_at;
  r.status.steps = int(job.steps.value_or(default_steps_));
  r.job = job;
  total_steps_ += r.status.steps;
  ids_ever_.insert(job.id);
  submitted_order_[job.id] = order_++;
  jobs_.emplace(job.id, std::move(r));
  queue_.push_back(job.id);
  ++counters_.submitted;
  changed_.notify_all();
  return {Submitted::accepted, queue_.size()};
}

JobStatus JobBoard::snapshot(const Record& r) const {
  JobStatus s = r.status;
  if (s.state == JobState::queued) {
    const auto it = std::find(queue_.begin(), queue_.end(), s.id);
    s.position = it == queue_.end() ? 0 : size_t(it - queue_.begin()) + 1;
  } else if (s.state == JobState::running) {
    s.seconds = seconds_between(r.started, std::chrono::steady_clock::now());
  }
  return s;
}

std::optional<JobStatus> JobBoard::status(const std::string& id) const {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return snapshot(it->second);
}

std::vector<JobStatus> JobBoard::list(std::optional<JobState> state, size_t limit) const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<uint64_t, const Record*>> picked;
  for (const auto& [id, r] : jobs_)
    if (!state || r.status.state == *state) picked.emplace_back(submitted_order_.at(id), &r);
  std::sort(picked.begin(), picked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  if (picked.size() > limit) picked.resize(limit);
  std::vector<JobStatus> out;
  for (const auto& [order, r] : picked) out.push_back(snapshot(*r));
  return out;
}

JobBoard::Cancelled JobBoard::cancel(const std::string& id, JobState* state) {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return Cancelled::unknown;
  Record& r = it->second;
  if (state) *state = r.status.state;
  if (r.status.state != JobState::queued) return Cancelled::not_queued;
  LedgerEntry line;
  line.id = id;
  line.status = LedgerStatus::cancelled;
  line.finished_at = iso8601_utc_now();
  append_ledger(out_dir_, line);
  queue_.erase(std::find(queue_.begin(), queue_.end(), id));
  r.status.state = JobState::cancelled;
  r.status.finished_at = line.finished_at;
  total_steps_ -= r.status.steps;
  remove_uploads(r);
  r.job.reset();
  history_.push_back(id);
  ++counters_.cancelled;
  if (state) *state = JobState::cancelled;
  forget_old_history();
  return Cancelled::cancelled;
}

void JobBoard::drain() {
  std::lock_guard lock(mutex_);
  draining_ = true;
  changed_.notify_all();
}

bool JobBoard::draining() const {
  std::lock_guard lock(mutex_);
  return draining_;
}

BoardCounters JobBoard::counters() const {
  std::lock_guard lock(mutex_);
  BoardCounters c = counters_;
  c.queued = queue_.size();
  c.running = 0;
  for (const auto& [id, r] : jobs_) c.running += r.status.state == JobState::running;
  return c;
}

std::optional<JobLine> JobBoard::next() {
  std::lock_guard lock(mutex_);
  if (draining_ || queue_.empty()) return std::nullopt;
  const std::string id = queue_.front();
  queue_.pop_front();
  Record& r = jobs_.at(id);
  r.status.state = JobState::running;
  r.status.started_at = iso8601_utc_now();
  r.started = r.last_step = std::chrono::steady_clock::now();
  JobLine line;
  line.id = id;
  line.job = *r.job;
  return line;
}

bool JobBoard::exhausted() const {
  std::lock_guard lock(mutex_);
  return draining_;
}

void JobBoard::wait_for_jobs(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return draining_ || !queue_.empty(); });
}

int64_t JobBoard::total_steps(int) const {
  std::lock_guard lock(mutex_);
  return total_steps_;
}

void JobBoard::started(const std::string& id, const std::string& where) {
  std::lock_guard lock(mutex_);
  if (const auto it = jobs_.find(id); it != jobs_.end()) it->second.status.where = where;
}

void JobBoard::progressed(const std::string& id, int step, int steps) {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Record& r = it->second;
  const auto now = std::chrono::steady_clock::now();
  counters_.step_seconds.add(seconds_between(r.last_step, now));
  r.last_step = now;
  r.status.step = step;
  r.status.steps = steps;
  r.status.seconds_per_step = step > 0 ? seconds_between(r.started, now) / step : 0;
}

void JobBoard::finished(const LedgerEntry& entry) {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(entry.id);
  if (it == jobs_.end()) return;
  Record& r = it->second;
  const auto now = std::chrono::steady_clock::now();
  if (entry.done() && r.status.step < entry.steps)  // the last step reports as the result
    counters_.step_seconds.add(seconds_between(r.last_step, now));
  r.status.state = entry.done() ? JobState::done : JobState::failed;
  r.status.error = entry.error;
  r.status.outputs = entry.outputs;
  r.status.seconds = entry.seconds;
  // Steps a failed job did not run leave the total, as the coordinator's own count does.
  total_steps_ -= r.status.steps - entry.steps;
  r.status.step = entry.steps;
  r.status.seconds_per_step = entry.steps > 0 ? entry.seconds / entry.steps : 0;
  r.status.finished_at = entry.finished_at.empty() ? iso8601_utc_now() : entry.finished_at;
  if (entry.done()) {
    ++counters_.done;
    counters_.job_seconds.add(entry.seconds);
  } else {
    ++counters_.failed;
  }
  remove_uploads(r);
  r.job.reset();
  history_.push_back(entry.id);
  forget_old_history();
}

void JobBoard::device_memory(const nlohmann::json& by_rank) {
  std::lock_guard lock(mutex_);
  for (const auto& [rank, stats] : by_rank.items()) counters_.device_memory[rank] = stats;
}

void JobBoard::remove_uploads(const Record& r) const {
  // Conditioning a client uploaded lives in OUT/uploads until its job is over; files the
  // client named on the server are never touched.
  if (!r.job) return;
  const std::filesystem::path uploads = std::filesystem::path(out_dir_) / "uploads";
  for (const std::optional<std::string>& path : {std::optional<std::string>(r.job->cond), r.job->noise}) {
    if (!path || std::filesystem::path(*path).parent_path() != uploads) continue;
    std::error_code ec;
    std::filesystem::remove(*path, ec);
  }
}

void JobBoard::forget_old_history() {
  while (history_.size() > kHistory) {
    submitted_order_.erase(history_.front());
    jobs_.erase(history_.front());
    history_.pop_front();
  }
}

}  // namespace ditrun::launcher
