#include "launcher/run_stage_worker.h"

#include <fmt/format.h>

#include "launcher/run_protocol.h"
#include "runtime/core/error.h"
#include "runtime/exec/state_message.h"
#include "runtime/sampling/euler.h"

namespace ditrun::launcher {
namespace {

// What the later stages need of a job to finish a step: its schedule and guidance.
nlohmann::json sampling_of(const PreparedJob& p) {
  return {{"id", p.job.id}, {"sigmas", p.sigmas}, {"guidance", p.guidance.guidance}, {"cfg", p.guidance.cfg}};
}

}  // namespace

StageWorker::StageWorker(transport::Channel& channel, runtime::Backend& backend, const runtime::Model& network,
                         runtime::WeightStore& weights, const models::Denoiser& denoiser, GroupPosition position,
                         transport::DeviceLink* link)
    : channel_(channel),
      backend_(backend),
      network_(network),
      weights_(weights),
      denoiser_(denoiser),
      pos_(position),
      units_(runtime::held_units(network, weights)),
      link_(link) {
  if (link_) transfers_ = backend_.create_stream();
  if (pos_.is_leader() != units_.has_prologue())
    fail("rank {}: stage {} of group {} {} the prologue", channel.rank(), pos_.stage, pos_.group,
         units_.has_prologue() ? "holds" : "lacks");
  if (pos_.is_last() != units_.has_epilogue(network))
    fail("rank {}: stage {} of group {} {} the epilogue", channel.rank(), pos_.stage, pos_.group,
         units_.has_epilogue(network) ? "holds" : "lacks");
}

transport::DeviceLink* StageWorker::device_link(int source) const {
  if (!link_) fail("rank {}: rank {} sent its state device to device, but this rank has no device link", channel_.rank(), source);
  return link_;
}

void StageWorker::send(int peer, transport::TensorMessage m) {
  channel_.send(peer, protocol::kTag, transport::encode_tensor_message(m));
}

void StageWorker::start() {
  if (!pos_.is_leader()) return;
  // One job per stage in flight: while the last stage finishes one job's step, the first
  // already runs another's.
  for (int i = 0; i < pos_.stages; ++i) {
    transport::TensorMessage request;
    request.header = {{"kind", protocol::kRequest}};
    send(pos_.coordinator, std::move(request));
    ++outstanding_requests_;
  }
}

void StageWorker::run_step(int64_t index, int step, HostTensor x) {
  const PreparedJob& p = active_.at(index).job;
  try {
    const runtime::HostTensors inputs = denoiser_.network_inputs(x, p.sigmas[size_t(step)], p.cond, p.guidance);
    runtime::StageOutput out = runtime::run_stage(backend_, network_, weights_, units_, &inputs, {});
    transport::TensorMessage m;
    m.header = {{"kind", protocol::kState}, {"index", index}, {"step", step}, {"job", sampling_of(p)}};
    m.tensors["x"] = std::move(x);
    pass_on(std::move(m), std::move(out));
  } catch (const Error& e) {
    report_failure(index, step, e.what());
    if (!pos_.is_last()) job_over(index);  // the last stage's report already freed the slot
  }
}

void StageWorker::pass_on(transport::TensorMessage m, runtime::StageOutput out) {
  // Each stage notes its device memory on the step as it passes, so the coordinator sees
  // every rank's (for metrics) without messages of its own.
  const runtime::MemoryStats memory = backend_.memory_stats();
  m.header["memory"][std::to_string(channel_.rank())] = {
      {"device", backend_.name()}, {"limit", memory.limit_bytes}, {"in_use", memory.in_use_bytes}, {"peak", memory.peak_bytes}};
  if (pos_.is_last()) {
    finish_call(std::move(m), std::move(*out.output));
  } else if (link_) {
    // Sends whose transfer finished give their memory back; the new one holds its own.
    while (!sends_.empty() && backend_.event_complete(sends_.front().done)) sends_.pop_front();
    sends_.push_back(runtime::put_state_on_link(backend_, out.state, m, *link_, pos_.next, transfers_));
    send(pos_.next, std::move(m));
  } else {
    runtime::put_state(backend_, out.state, m);
    send(pos_.next, std::move(m));
  }
}

void StageWorker::finish_call(transport::TensorMessage m, HostTensor output) {
  const int64_t index = m.header.at("index").get<int64_t>();
  const int step = m.header.at("step").get<int>();
  const nlohmann::json& job = m.header.at("job");
  try {
    const std::vector<double> sigmas = job.at("sigmas").get<std::vector<double>>();
    const models::GuidanceSettings guidance{job.at("guidance").get<double>(), job.at("cfg").get<double>()};
    HostTensor x = m.tensor("x");
    const HostTensor v = denoiser_.velocity_from_output(output, x.shape, guidance);
    runtime::euler_step(x, v, sigmas[size_t(step)], sigmas[size_t(step) + 1]);
    if (!x.all_finite()) fail("the latent is not finite (NaN or Inf) after step {}", step + 1);
    const int next = step + 1, steps = int(sigmas.size()) - 1;
    transport::TensorMessage back;
    back.header = {{"kind", protocol::kLatent}, {"index", index}, {"step", next}, {"finished", next == steps}};
    if (next == steps) {
      transport::TensorMessage result;
      result.header = {{"kind", protocol::kResult}, {"index", index}, {"status", "done"}, {"steps", steps}};
      result.header["memory"] = m.header.at("memory");
      result.tensors["x"] = std::move(x);
      send(pos_.coordinator, std::move(result));
    } else {
      transport::TensorMessage progress;
      progress.header = {{"kind", protocol::kProgress}, {"index", index}, {"step", next}};
      progress.header["memory"] = m.header.at("memory");
      send(pos_.coordinator, std::move(progress));
      back.tensors["x"] = std::move(x);
    }
    send(pos_.leader, std::move(back));
  } catch (const std::exception& e) {
    report_failure(index, step, e.what());
  }
}

void StageWorker::report_failure(int64_t index, int step, const std::string& error, bool here) {
  transport::TensorMessage result;
  result.header = {{"kind", protocol::kResult},
                   {"index", index},
                   {"status", "failed"},
                   {"steps", step},
                   {"error", here ? fmt::format("{} (rank {}, stage {} of group {}, step {})", error, channel_.rank(),
                                                pos_.stage, pos_.group, step + 1)
                                  : error}};
  send(pos_.coordinator, std::move(result));
  if (pos_.is_last()) {
    // The leader frees the job's slot when it hears the job is over.
    transport::TensorMessage back;
    back.header = {{"kind", protocol::kLatent}, {"index", index}, {"step", step}, {"finished", true}};
    send(pos_.leader, std::move(back));
  }
}

void StageWorker::job_over(int64_t index) {
  active_.erase(index);
  if (!stopped_) {
    transport::TensorMessage request;
    request.header = {{"kind", protocol::kRequest}};
    send(pos_.coordinator, std::move(request));
    ++outstanding_requests_;
  }
  maybe_finish();
}

void StageWorker::maybe_finish() {
  if (!stopped_ || !active_.empty() || outstanding_requests_ > 0 || finished_) return;
  if (pos_.next >= 0) {
    transport::TensorMessage stop;
    stop.header = {{"kind", protocol::kStop}};
    send(pos_.next, std::move(stop));
  }
  transport::TensorMessage done;
  done.header = {{"kind", protocol::kDone}};
  send(pos_.coordinator, std::move(done));
  finished_ = true;
}

void StageWorker::handle(transport::TensorMessage m, int source) {
  const std::string kind = m.header.at("kind").get<std::string>();
  if (kind == protocol::kJob && pos_.is_leader()) {
    --outstanding_requests_;
    const int64_t index = m.header.at("index").get<int64_t>();
    PreparedJob p = take_job(m);
    HostTensor x = p.x;
    active_[index] = ActiveJob{std::move(p)};
    run_step(index, 0, std::move(x));
  } else if (kind == protocol::kStop && pos_.is_leader()) {
    --outstanding_requests_;
    stopped_ = true;
    maybe_finish();
  } else if (kind == protocol::kStop) {
    if (pos_.next >= 0) send(pos_.next, std::move(m));
    finished_ = true;
  } else if (kind == protocol::kLatent && pos_.is_leader()) {
    const int64_t index = m.header.at("index").get<int64_t>();
    if (m.header.at("finished").get<bool>()) {
      job_over(index);
    } else {
      HostTensor x = m.tensor("x");
      run_step(index, m.header.at("step").get<int>(), std::move(x));
    }
  } else if (kind == protocol::kState && !pos_.is_leader()) {
    const int64_t index = m.header.at("index").get<int64_t>();
    const int step = m.header.at("step").get<int>();
    if (m.header.contains("error")) {  // an earlier stage failed the job: pass the word on
      if (pos_.is_last()) report_failure(index, step, m.header.at("error").get<std::string>(), false);
      else send(pos_.next, std::move(m));
      return;
    }
    try {
      runtime::ActivationState state = runtime::has_device_state(m)
                                           ? runtime::take_state_from_link(backend_, m, *device_link(source), source,
                                                                           transfers_)
                                           : runtime::take_state(backend_, m);
      pass_on(std::move(m), runtime::run_stage(backend_, network_, weights_, units_, nullptr, std::move(state)));
    } catch (const Error& e) {
      if (pos_.is_last()) {
        report_failure(index, step, e.what());
      } else {
        transport::TensorMessage failed;
        failed.header = m.header;
        failed.header["error"] = fmt::format("{} (rank {}, stage {} of group {})", e.what(), channel_.rank(),
                                             pos_.stage, pos_.group);
        send(pos_.next, std::move(failed));
      }
    }
  } else {
    fail("rank {} (stage {} of group {}): unexpected '{}' message from rank {}", channel_.rank(), pos_.stage,
         pos_.group, kind, source);
  }
}

}  // namespace ditrun::launcher
