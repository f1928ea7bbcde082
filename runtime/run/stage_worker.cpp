#include "runtime/run/stage_worker.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "runtime/core/error.h"
#include "runtime/run/protocol.h"
#include "runtime/sampling/sampler.h"

namespace ditrun::runtime {
namespace {

using protocol::Kind;
namespace key = protocol::key;

// What the later stages need of a job to finish step `step`: its schedule, the step's
// guidance, and for two experts whether the next step leaves the high-noise expert (a group
// of one phase hands the job on there).
nlohmann::json sampling_of(const SamplingJob& p, int step, const Guidance& guidance) {
  nlohmann::json j = {{"id", p.id}, {"sigmas", p.sigmas}, {"guidance", guidance.guidance}, {"cfg", guidance.cfg},
                      {"sampler", p.sampler}};
  if (p.experts && step + 1 < p.steps())
    j["leaves_high_noise"] = p.expert_at(step) == Expert::high_noise && p.expert_at(step + 1) == Expert::low_noise;
  return j;
}

}  // namespace

StageWorker::StageWorker(transport::Channel& channel, Backend& backend, const Model& network, StageWeights& weights,
                         const Denoising& denoising, GroupPosition position, transport::DeviceLink* link)
    : channel_(channel),
      backend_(backend),
      network_(network),
      weights_(weights),
      denoising_(denoising),
      pos_(position),
      units_(held_units(network, weights.loaded())),
      link_(link) {
  if ((pos_.stage == 0) != units_.has_prologue())
    fail("rank {}: stage {} of group {} {} the prologue", channel.rank(), pos_.stage, pos_.group,
         units_.has_prologue() ? "holds" : "lacks");
  if ((pos_.stage == pos_.stages - 1) != units_.has_epilogue(network))
    fail("rank {}: stage {} of group {} {} the epilogue", channel.rank(), pos_.stage, pos_.group,
         units_.has_epilogue(network) ? "holds" : "lacks");
  if (link_) transfers_ = backend_.create_stream();
  if (pos_.team.size() > 1) {
    // Member k = c * sp + q holds CFG half c and token share q (partition/plan.h).
    const int sp = pos_.sequence_parallel, cfg = pos_.cfg_parallel, c = pos_.share / sp, q = pos_.share % sp;
    std::vector<int> tokens, items;
    for (int i = 0; i < sp; ++i) tokens.push_back(pos_.team[size_t(c * sp + i)]);
    for (int i = 0; i < cfg; ++i) items.push_back(pos_.team[size_t(i * sp + q)]);
    tokens_group_.emplace(channel, tokens, protocol::kTokensTag);
    items_group_.emplace(channel, items, protocol::kItemsTag);
    team_group_.emplace(channel, pos_.team, protocol::kTeamTag);
    if (sp > 1) tokens_ = std::make_unique<SequenceParallel>(*tokens_group_, pos_.sequence_ring);
    if (cfg > 1) {
      items_ = std::make_unique<BatchParallel>(*items_group_);
      team_tokens_ = std::make_unique<SequenceParallel>(*team_group_);
    }
  }
}

JobSplit StageWorker::split_for(bool guided) {
  JobSplit split;
  if (items_ && guided) {
    split.batch = items_.get();
    split.sequence = tokens_.get();
  } else if (items_) {
    split.sequence = team_tokens_.get();
  } else {
    split.sequence = tokens_.get();
  }
  return split;
}

StageOutput StageWorker::run_step(int64_t index, int step, bool guided, const HostTensors* inputs,
                                  ActivationState state) {
  WeightStore& weights = weights_.for_call(inputs ? expert_of(*inputs) : expert_of(state));
  if (pos_.team.size() == 1) return run_stage(backend_, network_, weights, units_, inputs, std::move(state));
  if (items_ && !guided && !told_unguided_) {
    spdlog::info("rank {}: a job without classifier-free guidance has no CFG halves to split: the {} ranks of this "
                 "stage split its tokens instead",
                 channel_.rank(), pos_.team.size());
    told_unguided_ = true;
  }
  transport::TensorMessage share = protocol::message(Kind::share);
  share.header[key::index] = index;
  share.header[key::step] = step;
  share.header[key::split] = guided && items_ ? "cfg" : "tokens";
  if (inputs)
    for (const auto& [name, t] : *inputs) share.tensors["in/" + name] = t;
  else
    put_state(backend_, state, share);
  for (size_t i = 1; i < pos_.team.size(); ++i) send(pos_.team[i], share);
  return run_stage(backend_, network_, weights, units_, inputs, std::move(state), {}, split_for(guided));
}

void StageWorker::run_shared_step(transport::TensorMessage m) {
  const JobSplit split = split_for(m.header.at(key::split).get<std::string>() == "cfg");
  // Every member runs the same checks on the same input (shapes, token counts), so a job that
  // fails here fails on the primary too, which reports it; the member goes on with the next.
  try {
    if (units_.has_prologue()) {
      HostTensors inputs;
      for (auto& [name, t] : m.tensors)
        if (name.starts_with("in/")) inputs[name.substr(3)] = std::move(t);
      run_stage(backend_, network_, weights_.for_call(expert_of(inputs)), units_, &inputs, {}, {}, split);
    } else {
      ActivationState state = take_state(backend_, m);
      WeightStore& weights = weights_.for_call(expert_of(state));
      run_stage(backend_, network_, weights, units_, nullptr, std::move(state), {}, split);
    }
  } catch (const Error& e) {
    spdlog::debug("rank {}: its share of job {} step {} failed: {}", channel_.rank(),
                  m.header.at(key::index).get<int64_t>(), m.header.at(key::step).get<int>() + 1, e.what());
  }
}

void StageWorker::send(int peer, const transport::TensorMessage& m) { protocol::send(channel_, peer, m); }

void StageWorker::request_job() {
  send(pos_.coordinator, protocol::message(Kind::request));
  ++outstanding_requests_;
}

void StageWorker::start() {
  if (!pos_.is_leader()) return;  // team members and later stages wait for work
  // One job per stage in flight: while the last stage finishes one job's step, the first
  // already runs another's. Swapping experts, one job at a time: jobs in different phases
  // would swap at every step.
  const int in_flight = weights_.swaps_experts() ? 1 : pos_.stages;
  for (int i = 0; i < in_flight; ++i) request_job();
}

// The pipeline schedule: every rank's part in its group, one message at a time. Jobs are the
// micro-batches: the leader starts a step of a job when the job arrives or its previous step
// comes back, each stage runs its blocks on the state it receives and passes it on, and the
// last stage takes the step. Stages work on different jobs at once.
void StageWorker::handle(transport::TensorMessage m, int source) {
  const Kind kind = protocol::kind_of(m, source);
  if (!pos_.is_primary()) {  // a team member: its primary's steps, then its stop
    if (kind == Kind::share) {
      run_shared_step(std::move(m));
    } else if (kind == Kind::stop) {
      finished_ = true;
    } else {
      fail("rank {} (share {} of stage {} of group {}): unexpected '{}' message from rank {}", channel_.rank(),
           pos_.share, pos_.stage, pos_.group, protocol::name(kind), source);
    }
    return;
  }
  if (kind == Kind::job && pos_.is_leader()) {  // a new job: its first step starts here
    --outstanding_requests_;
    const int64_t index = m.header.at(key::index).get<int64_t>();
    // A job handed on from another group (experts in phases) goes on where that one stopped;
    // its sampler history rides with the step's state to this group's last stage.
    const int step = m.header.value(key::resume, false) ? m.header.at(key::step).get<int>() : 0;
    std::optional<SolverHistory> history = take_history(m);
    SamplingJob job = take_job(m);
    HostTensor x = job.x;
    active_[index] = std::move(job);
    if (history) resumed_histories_[index] = std::move(*history);
    run_first_stage(index, step, std::move(x));
  } else if (kind == Kind::latent && pos_.is_leader()) {  // a step came back: the next one, or the end
    const int64_t index = m.header.at(key::index).get<int64_t>();
    if (m.header.at(key::finished).get<bool>()) job_over(index);
    else run_first_stage(index, m.header.at(key::step).get<int>(), m.tensor("x"));
  } else if (kind == Kind::state && !pos_.is_leader()) {  // the previous stage's output: run this stage on it
    const int64_t index = m.header.at(key::index).get<int64_t>();
    const int step = m.header.at(key::step).get<int>();
    if (m.header.contains(key::error)) {  // an earlier stage failed the job: pass the word on
      if (pos_.is_last()) report_failure(index, step, m.header.at(key::error).get<std::string>(), false);
      else send(pos_.next, m);
      return;
    }
    try {
      ActivationState state = has_device_state(m) ? take_state_from_link(backend_, m, *device_link(source), source, transfers_)
                                                  : take_state(backend_, m);
      const bool guided = m.header.at(key::job).at("cfg").get<double>() != 1;
      StageOutput out = run_step(index, step, guided, nullptr, std::move(state));
      pass_on(std::move(m), std::move(out));
    } catch (const Error& e) {
      if (pos_.is_last()) {
        report_failure(index, step, e.what());
      } else {
        transport::TensorMessage failed;
        failed.header = m.header;
        failed.header[key::error] =
            fmt::format("{} (rank {}, stage {} of group {})", e.what(), channel_.rank(), pos_.stage, pos_.group);
        send(pos_.next, failed);
      }
    }
  } else if (kind == Kind::stop && pos_.is_leader()) {  // no more jobs: finish what is in flight
    --outstanding_requests_;
    stopped_ = true;
    maybe_finish();
  } else if (kind == Kind::stop) {  // the leader is done: pass it down the pipeline
    if (pos_.next >= 0) send(pos_.next, m);
    stop_team();
    finished_ = true;
  } else {
    fail("rank {} (stage {} of group {}): unexpected '{}' message from rank {}", channel_.rank(), pos_.stage,
         pos_.group, protocol::name(kind), source);
  }
}

void StageWorker::run_first_stage(int64_t index, int step, HostTensor x) {
  const SamplingJob& p = active_.at(index);
  try {
    const std::optional<double> timestep =
        p.timesteps.empty() ? std::nullopt : std::optional<double>(p.timesteps[size_t(step)]);
    // A model of two experts: this step's expert and its guidance.
    const Guidance guidance = p.guidance_at(step);
    HostTensors inputs = denoising_.network_inputs(x, p.sigmas[size_t(step)], timestep, p.cond, guidance);
    if (const std::optional<Expert> expert = p.expert_at(step)) inputs[std::string(kExpertInput)] = expert_input(*expert);
    StageOutput out = run_step(index, step, guidance.cfg != 1, &inputs, {});
    transport::TensorMessage m = protocol::message(Kind::state);
    m.header[key::index] = index;
    m.header[key::step] = step;
    m.header[key::job] = sampling_of(p, step, guidance);
    m.tensors["x"] = std::move(x);
    if (const auto history = resumed_histories_.find(index); history != resumed_histories_.end()) {
      put_history(history->second, m);
      resumed_histories_.erase(history);
    }
    // Frames the job holds fixed travel to the last stage, which resets them after the step.
    if (const auto fixed = p.cond.tensors.find(kFixedFrames); fixed != p.cond.tensors.end())
      m.tensors[std::string(kFixedFrames)] = fixed->second;
    pass_on(std::move(m), std::move(out));
  } catch (const Error& e) {
    report_failure(index, step, e.what());
    if (!pos_.is_last()) job_over(index);  // the last stage's report already freed the slot
  }
}

void StageWorker::pass_on(transport::TensorMessage m, StageOutput out) {
  // Each stage notes its device memory on the step as it passes, so the coordinator sees
  // every rank's (for metrics) without messages of its own.
  const MemoryStats memory = backend_.memory_stats();
  m.header[key::memory][std::to_string(channel_.rank())] = {
      {"device", backend_.name()}, {"limit", memory.limit_bytes}, {"in_use", memory.in_use_bytes}, {"peak", memory.peak_bytes}};
  if (pos_.is_last()) {
    finish_step(std::move(m), std::move(*out.output));
  } else if (link_) {
    // Sends whose transfer finished give their memory back; the new one holds its own.
    while (!sends_.empty() && backend_.event_complete(sends_.front().done)) sends_.pop_front();
    sends_.push_back(put_state_on_link(backend_, out.state, m, *link_, pos_.next, transfers_));
    send(pos_.next, m);
  } else {
    put_state(backend_, out.state, m);
    send(pos_.next, m);
  }
}

void StageWorker::finish_step(transport::TensorMessage m, HostTensor output) {
  const int64_t index = m.header.at(key::index).get<int64_t>();
  const int step = m.header.at(key::step).get<int>();
  const nlohmann::json& job = m.header.at(key::job);
  try {
    const std::vector<double> sigmas = job.at("sigmas").get<std::vector<double>>();
    const Guidance guidance{job.at("guidance").get<double>(), job.at("cfg").get<double>()};
    HostTensor x = m.tensor("x");
    const HostTensor v = denoising_.velocity_from_output(output, x.shape, guidance);
    const std::string name = job.value("sampler", "euler");
    const std::optional<SamplerKind> sampler = sampler_from_name(name);
    if (!sampler) fail("sampler '{}' is not available ({})", name, kSamplerNames);
    // A multistep sampler's history stays with the rank that ends the job's steps; a job
    // (re)starting at step 0 starts a fresh one, a job handed on brings its own.
    if (step == 0) histories_.erase(index);
    if (std::optional<SolverHistory> carried = take_history(m)) histories_[index] = std::move(*carried);
    sampler_step(*sampler, sigmas, step, x, v, histories_[index]);
    if (const auto fixed = m.tensors.find(kFixedFrames); fixed != m.tensors.end()) reset_fixed_frames(x, fixed->second);
    if (!x.all_finite()) fail("the latent is not finite (NaN or Inf) after step {}", step + 1);
    const int next = step + 1, steps = int(sigmas.size()) - 1;
    if (weights_.phase() == Expert::high_noise && job.value("leaves_high_noise", false)) {
      // Experts in phases: the low-noise steps run on another group. The coordinator takes
      // the job on with its latent and history; this group's leader hears the job is over.
      transport::TensorMessage handover = protocol::message(Kind::handover);
      handover.header[key::index] = index;
      handover.header[key::step] = next;
      handover.tensors["x"] = std::move(x);
      put_history(histories_[index], handover);
      histories_.erase(index);
      transport::TensorMessage progress = protocol::message(Kind::progress);
      progress.header[key::index] = index;
      progress.header[key::step] = next;
      progress.header[key::memory] = m.header.at(key::memory);
      send(pos_.coordinator, progress);
      send(pos_.coordinator, handover);
      transport::TensorMessage over = protocol::message(Kind::latent);
      over.header[key::index] = index;
      over.header[key::step] = next;
      over.header[key::finished] = true;
      send(pos_.leader, over);
      return;
    }
    transport::TensorMessage back = protocol::message(Kind::latent);
    back.header[key::index] = index;
    back.header[key::step] = next;
    back.header[key::finished] = next == steps;
    if (next == steps) {
      histories_.erase(index);
      transport::TensorMessage result = protocol::message(Kind::result);
      result.header[key::index] = index;
      result.header[key::status] = "done";
      result.header[key::steps] = steps;
      result.header[key::memory] = m.header.at(key::memory);
      result.tensors["x"] = std::move(x);
      send(pos_.coordinator, result);
    } else {
      transport::TensorMessage progress = protocol::message(Kind::progress);
      progress.header[key::index] = index;
      progress.header[key::step] = next;
      progress.header[key::memory] = m.header.at(key::memory);
      send(pos_.coordinator, progress);
      back.tensors["x"] = std::move(x);
    }
    send(pos_.leader, back);
  } catch (const std::exception& e) {
    report_failure(index, step, e.what());
  }
}

void StageWorker::report_failure(int64_t index, int step, const std::string& error, bool here) {
  transport::TensorMessage result = protocol::message(Kind::result);
  result.header[key::index] = index;
  result.header[key::status] = "failed";
  result.header[key::steps] = step;
  result.header[key::error] = here ? fmt::format("{} (rank {}, stage {} of group {}, step {})", error, channel_.rank(),
                                                 pos_.stage, pos_.group, step + 1)
                                   : error;
  send(pos_.coordinator, result);
  if (pos_.is_last()) {
    histories_.erase(index);
    // The leader frees the job's slot when it hears the job is over.
    transport::TensorMessage back = protocol::message(Kind::latent);
    back.header[key::index] = index;
    back.header[key::step] = step;
    back.header[key::finished] = true;
    send(pos_.leader, back);
  }
}

void StageWorker::job_over(int64_t index) {
  active_.erase(index);
  if (!stopped_) request_job();
  maybe_finish();
}

void StageWorker::maybe_finish() {
  if (!stopped_ || !active_.empty() || outstanding_requests_ > 0 || finished_) return;
  if (pos_.next >= 0) send(pos_.next, protocol::message(Kind::stop));
  stop_team();
  send(pos_.coordinator, protocol::message(Kind::done));
  finished_ = true;
}

void StageWorker::stop_team() {
  for (size_t i = 1; i < pos_.team.size(); ++i) send(pos_.team[i], protocol::message(Kind::stop));
}

transport::DeviceLink* StageWorker::device_link(int source) const {
  if (!link_)
    fail("rank {}: rank {} sent its state device to device, but this rank has no device link", channel_.rank(), source);
  return link_;
}

}  // namespace ditrun::runtime
