#include "runtime/run/coordinator.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "runtime/core/error.h"
#include "runtime/run/protocol.h"

namespace ditrun::runtime {
namespace {
using protocol::Kind;
namespace key = protocol::key;
}  // namespace

Coordinator::Coordinator(transport::Channel& channel, JobSource& source, JobSink& sink,
                         std::map<int, std::string> groups, std::string backend, double predicted_step_seconds,
                         std::function<void(const std::string&)> on_in_flight, std::set<int> low_noise_leaders)
    : channel_(channel),
      source_(source),
      sink_(sink),
      groups_(std::move(groups)),
      backend_(std::move(backend)),
      predicted_step_seconds_(predicted_step_seconds),
      on_in_flight_(std::move(on_in_flight)),
      leaders_(int(groups_.size())),
      low_noise_leaders_(std::move(low_noise_leaders)),
      progress_("run", "steps") {}

void Coordinator::record(const JobOutcome& outcome) {
  sink_.record(outcome);
  source_.finished(outcome);
  if (outcome.done) {
    spdlog::info("job '{}' done in {:.2f} s: {}", outcome.id, outcome.seconds, fmt::join(outcome.outputs, ", "));
    if (predicted_step_seconds_ > 0 && outcome.steps > 0)
      spdlog::info("job '{}': {:.3f} s per step measured, {:.3f} s predicted by the plan", outcome.id,
                   outcome.seconds / outcome.steps, predicted_step_seconds_);
  } else {
    ++failed_;
    spdlog::error("{}", outcome.error);
  }
}

bool Coordinator::serve_request(int leader) {
  // The next job that prepares; invalid ones and those that do not prepare are recorded as
  // failed on the way.
  while (std::optional<JobTicket> ticket = source_.next()) {
    ++handed_out_;
    const int64_t index = next_index_++;
    JobOutcome failed;
    failed.id = ticket->id;
    if (!ticket->valid()) {
      failed.error = ticket->error;
      record(failed);
      continue;
    }
    try {
      Assigned a{ticket->prepare(), ticket->where, leader, std::chrono::steady_clock::now()};
      if (!low_noise_leaders_.empty() && a.job.expert_at(0) == Expert::low_noise) {
        // Experts in phases, a job with no high-noise step: straight to a low-noise group.
        Handover h{index, protocol::message(Kind::handover)};
        h.message.header[key::step] = 0;
        h.message.tensors["x"] = a.job.x;
        source_.started(a.job.id, "a low-noise group");
        running_.emplace(index, std::move(a));
        ++assigned_;
        handovers_.push_back(std::move(h));
        continue;
      }
      transport::TensorMessage m = protocol::message(Kind::job);
      m.header[key::index] = index;
      put_job(a.job, m);
      protocol::send(channel_, leader, m);
      const auto group = groups_.find(leader);
      source_.started(a.job.id, group == groups_.end() ? fmt::format("rank {}", leader) : group->second);
      running_.emplace(index, std::move(a));
      if (!low_noise_leaders_.empty()) in_high_noise_.insert(index);
      ++assigned_;
      in_flight_changed();
      return true;
    } catch (const Error& e) {
      failed.error = fmt::format("{}job '{}': {}", ticket->where, ticket->id, e.what());
      steps_dropped_ += ticket->steps;
      record(failed);
    }
  }
  if (!source_.exhausted()) return false;
  protocol::send(channel_, leader, protocol::message(Kind::stop));
  return true;
}

bool Coordinator::serve_low_noise(int leader) {
  if (!handovers_.empty()) {
    Handover h = std::move(handovers_.front());
    handovers_.pop_front();
    auto it = running_.find(h.index);
    if (it == running_.end()) fail("coordinator: a handover for job {}, which is not running", h.index);
    SamplingJob job = it->second.job;
    job.x = h.message.tensor("x");
    transport::TensorMessage m = protocol::message(Kind::job);
    m.header[key::index] = h.index;
    m.header[key::resume] = true;
    m.header[key::step] = h.message.header.at(key::step);
    put_job(job, m);
    for (auto& [name, t] : h.message.tensors)
      if (name.starts_with("history/")) m.tensors[name] = std::move(t);
    for (const char* k : {"history_order", "history_estimates"})
      if (h.message.header.contains(k)) m.header[k] = h.message.header.at(k);
    protocol::send(channel_, leader, m);
    it->second.leader = leader;
    in_flight_changed();
    return true;
  }
  // No handover can come once the source is spent and no job is in its high-noise steps.
  if (!source_.exhausted() || !in_high_noise_.empty()) return false;
  protocol::send(channel_, leader, protocol::message(Kind::stop));
  return true;
}

bool Coordinator::poll() {
  bool sent = false;
  while (!waiting_low_noise_.empty() && serve_low_noise(waiting_low_noise_.front())) {
    waiting_low_noise_.pop_front();
    sent = true;
  }
  while (!waiting_leaders_.empty() && serve_request(waiting_leaders_.front())) {
    waiting_leaders_.pop_front();
    sent = true;
  }
  return sent;
}

void Coordinator::update_progress(const std::string& detail) {
  const int64_t total = source_.total_steps() - steps_dropped_;
  progress_.update(size_t(steps_done_), size_t(std::max(total, steps_done_)), detail);
}

void Coordinator::handle(transport::TensorMessage m, int source) {
  const Kind kind = protocol::kind_of(m, source);
  if (kind == Kind::request && low_noise_leaders_.count(source)) {
    if (!waiting_low_noise_.empty() || !serve_low_noise(source)) waiting_low_noise_.push_back(source);
  } else if (kind == Kind::request) {
    // Leaders wait their turn: a job that arrives goes to the one that asked first.
    if (!waiting_leaders_.empty() || !serve_request(source)) waiting_leaders_.push_back(source);
  } else if (kind == Kind::handover) {
    const int64_t index = m.header.at(key::index).get<int64_t>();
    if (!running_.count(index)) fail("handover from rank {} for job {}, which is not running", source, index);
    in_high_noise_.erase(index);
    handovers_.push_back({index, std::move(m)});
  } else if (kind == Kind::done) {
    ++leaders_done_;
  } else if (kind == Kind::progress) {
    const int64_t index = m.header.at(key::index).get<int64_t>();
    auto it = running_.find(index);
    if (it == running_.end()) fail("progress from rank {} for job {}, which is not running", source, index);
    ++steps_done_;
    if (const auto memory = m.header.find(key::memory); memory != m.header.end()) source_.device_memory(*memory);
    const int step = m.header.at(key::step).get<int>();
    const SamplingJob& job = it->second.job;
    source_.progressed(job.id, step, job.steps());
    update_progress(fmt::format("job '{}' step {}/{}", job.id, step, job.steps()));
  } else if (kind == Kind::result) {
    const int64_t index = m.header.at(key::index).get<int64_t>();
    auto it = running_.find(index);
    if (it == running_.end()) fail("result from rank {} for job {}, which is not running", source, index);
    const Assigned& a = it->second;
    JobOutcome outcome;
    outcome.id = a.job.id;
    outcome.steps = m.header.value(key::steps, 0);
    if (m.header.at(key::status).get<std::string>() == "done") {
      if (const auto memory = m.header.find(key::memory); memory != m.header.end()) source_.device_memory(*memory);
      try {
        outcome.outputs = sink_.write_outputs(a.job, m.tensor("x"), backend_);
        outcome.done = true;
      } catch (const Error& e) {
        outcome.error = fmt::format("{}job '{}': {}", a.where, outcome.id, e.what());
      }
    } else {
      outcome.error = fmt::format("{}job '{}': {}", a.where, outcome.id, m.header.at(key::error).get<std::string>());
    }
    // Steps a failed job did not run leave the total.
    steps_dropped_ += a.job.steps() - outcome.steps;
    outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - a.start).count();
    running_.erase(it);
    in_high_noise_.erase(index);
    ++results_;
    in_flight_changed();
    record(outcome);
  } else {
    fail("coordinator: unexpected '{}' message from rank {}", protocol::name(kind), source);
  }
  // A handover, or the last high-noise job's end, may answer a waiting low-noise leader.
  if (!low_noise_leaders_.empty()) poll();
  if (finished()) progress_.finish(fmt::format("{} job(s) run, {} failed", handed_out_, failed_));
}

std::string Coordinator::in_flight() const {
  std::vector<std::string> jobs;
  for (const auto& [index, a] : running_) {
    auto g = groups_.find(a.leader);
    jobs.push_back(fmt::format("'{}' on {}", a.job.id, g == groups_.end() ? fmt::format("rank {}", a.leader) : g->second));
  }
  return jobs.empty() ? "none" : fmt::format("{}", fmt::join(jobs, ", "));
}

void Coordinator::in_flight_changed() const {
  if (on_in_flight_) on_in_flight_(in_flight());
}

}  // namespace ditrun::runtime
