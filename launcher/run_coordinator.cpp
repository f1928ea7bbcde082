#include "launcher/run_coordinator.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "launcher/ledger.h"
#include "launcher/run_protocol.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {

namespace {

void send(transport::Channel& channel, int peer, transport::TensorMessage m) {
  channel.send(peer, protocol::kTag, transport::encode_tensor_message(m));
}

}  // namespace

Coordinator::Coordinator(transport::Channel& channel, JobSource& source, std::string jobs_file,
                         std::string out_dir, const arch::ModelConfig& config, std::string backend_name,
                         std::map<int, std::string> groups, std::function<void(const std::string&)> on_in_flight)
    : channel_(channel),
      source_(source),
      jobs_file_(std::move(jobs_file)),
      out_dir_(std::move(out_dir)),
      config_(config),
      denoiser_(models::make_denoiser(config)),
      backend_name_(std::move(backend_name)),
      groups_(std::move(groups)),
      on_in_flight_(std::move(on_in_flight)),
      leaders_(int(groups_.size())),
      progress_("run", "steps") {}

void Coordinator::record(const LedgerEntry& entry) {
  append_ledger(out_dir_, entry);
  source_.finished(entry);
  if (entry.done()) {
    spdlog::info("job '{}' done in {:.2f} s: {}", entry.id, entry.seconds, fmt::join(entry.outputs, ", "));
  } else {
    ++failed_;
    spdlog::error("{}", entry.error);
  }
}

bool Coordinator::serve_request(int leader) {
  // The next job that prepares; lines that do not are recorded as failed on the way.
  while (std::optional<JobLine> line = source_.next()) {
    ++handed_out_;
    const int64_t index = next_index_++;
    LedgerEntry failed;
    failed.id = line->ok() ? line->job->id : line->id;
    if (!line->ok()) {
      failed.error = line->error;
      record(failed);
      continue;
    }
    const std::string where = jobs_file_.empty() ? "" : fmt::format("{}:{}: ", jobs_file_, line->job->line);
    try {
      Assigned a{prepare_job(*line->job, config_, *denoiser_), leader, std::chrono::steady_clock::now()};
      transport::TensorMessage m;
      m.header = {{"kind", protocol::kJob}, {"index", index}};
      put_job(a.job, m);
      send(channel_, leader, std::move(m));
      const auto group = groups_.find(leader);
      source_.started(a.job.job.id, group == groups_.end() ? fmt::format("rank {}", leader) : group->second);
      running_.emplace(index, std::move(a));
      ++assigned_;
      in_flight_changed();
      return true;
    } catch (const Error& e) {
      failed.error = fmt::format("{}job '{}': {}", where, line->job->id, e.what());
      steps_dropped_ += line->job->steps.value_or(config_.sampling.steps);
      record(failed);
    }
  }
  if (!source_.exhausted()) return false;
  transport::TensorMessage stop;
  stop.header = {{"kind", protocol::kStop}};
  send(channel_, leader, std::move(stop));
  return true;
}

bool Coordinator::poll() {
  bool sent = false;
  while (!waiting_leaders_.empty() && serve_request(waiting_leaders_.front())) {
    waiting_leaders_.pop_front();
    sent = true;
  }
  return sent;
}

void Coordinator::update_progress(const std::string& detail) {
  const int64_t total = source_.total_steps(config_.sampling.steps) - steps_dropped_;
  progress_.update(size_t(steps_done_), size_t(std::max(total, steps_done_)), detail);
}

void Coordinator::handle(transport::TensorMessage m, int source) {
  const std::string kind = m.header.at("kind").get<std::string>();
  if (kind == protocol::kRequest) {
    // Leaders wait their turn: a job that arrives goes to the one that asked first.
    if (!waiting_leaders_.empty() || !serve_request(source)) waiting_leaders_.push_back(source);
  } else if (kind == protocol::kDone) {
    ++leaders_done_;
  } else if (kind == protocol::kProgress) {
    const int64_t index = m.header.at("index").get<int64_t>();
    auto it = running_.find(index);
    if (it == running_.end()) fail("progress from rank {} for job {}, which is not running", source, index);
    ++steps_done_;
    if (const auto memory = m.header.find("memory"); memory != m.header.end()) source_.device_memory(*memory);
    const int step = m.header.at("step").get<int>();
    source_.progressed(it->second.job.job.id, step, it->second.job.steps());
    update_progress(fmt::format("job '{}' step {}/{}", it->second.job.job.id, step, it->second.job.steps()));
  } else if (kind == protocol::kResult) {
    const int64_t index = m.header.at("index").get<int64_t>();
    auto it = running_.find(index);
    if (it == running_.end()) fail("result from rank {} for job {}, which is not running", source, index);
    const Assigned& a = it->second;
    LedgerEntry entry;
    entry.id = a.job.job.id;
    entry.steps = m.header.value("steps", 0);
    const std::string where = jobs_file_.empty() ? "" : fmt::format("{}:{}: ", jobs_file_, a.job.job.line);
    if (m.header.at("status").get<std::string>() == "done") {
      if (const auto memory = m.header.find("memory"); memory != m.header.end()) source_.device_memory(*memory);
      try {
        entry.outputs = write_job_outputs(out_dir_, a.job, m.tensor("x"), config_, backend_name_);
        entry.status = LedgerStatus::done;
      } catch (const Error& e) {
        entry.error = fmt::format("{}job '{}': {}", where, entry.id, e.what());
      }
    } else {
      entry.error = fmt::format("{}job '{}': {}", where, entry.id, m.header.at("error").get<std::string>());
    }
    // Steps a failed job did not run leave the total.
    steps_dropped_ += a.job.steps() - entry.steps;
    entry.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - a.start).count();
    running_.erase(it);
    ++results_;
    in_flight_changed();
    record(entry);
  } else {
    fail("coordinator: unexpected '{}' message from rank {}", kind, source);
  }
  if (finished())
    progress_.finish(fmt::format("{} job(s) run, {} failed", handed_out_, failed_));
}

std::string Coordinator::in_flight() const {
  std::vector<std::string> jobs;
  for (const auto& [index, a] : running_) {
    auto g = groups_.find(a.leader);
    jobs.push_back(fmt::format("'{}' on {}", a.job.job.id, g == groups_.end() ? fmt::format("rank {}", a.leader) : g->second));
  }
  return jobs.empty() ? "none" : fmt::format("{}", fmt::join(jobs, ", "));
}

void Coordinator::in_flight_changed() const {
  if (on_in_flight_) on_in_flight_(in_flight());
}

}  // namespace ditrun::launcher
