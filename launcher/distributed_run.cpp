#include "launcher/distributed_run.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "launcher/ledger.h"
#include "launcher/run_coordinator.h"
#include "launcher/run_protocol.h"
#include "launcher/run_stage_worker.h"
#include "models/pipeline/model_cost.h"
#include "models/pipeline/model_source.h"
#include "models/pipeline/network.h"
#include "partition/units.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

void send(transport::Channel& channel, int peer, const transport::TensorMessage& m) {
  channel.send(peer, protocol::kTag, transport::encode_tensor_message(m));
}

// Rank 0: the plan for `ranks` ranks of this run's backend, from --plan or made here.
partition::Plan make_plan(const DistributedRun& o, int ranks, const models::ModelSource& source,
                          const runtime::Model& network) {
  if (o.plan_path) return read_plan_file(*o.plan_path);
  DeviceChoice choice = run_device_choice(o.devices, o.backend, ranks);
  if (o.devices.objective.empty()) choice.objective = partition::Objective::throughput;  // a queue of jobs
  const models::JobGeometry geometry =
      models::job_geometry(source.config, o.plan_for ? *o.plan_for : largest_job_settings(o.lines));
  return plan_model(source.config, network, models::checkpoint_weights(*source.weights), geometry, choice).plan;
}

// Rank 0 sends the plan (or why there is none) to every rank; the others receive it.
partition::Plan share_plan(transport::Channel& channel, const DistributedRun& o, const models::ModelSource& source,
                           const runtime::Model& network) {
  if (channel.rank() == 0) {
    transport::TensorMessage m;
    try {
      partition::Plan plan = make_plan(o, channel.size(), source, network);
      m.header = {{"kind", protocol::kPlan}, {"plan", partition::to_json(plan)}};
      for (int r = 1; r < channel.size(); ++r) send(channel, r, m);
      return plan;
    } catch (const Error& e) {
      m.header = {{"kind", protocol::kAbort}, {"error", e.what()}};
      for (int r = 1; r < channel.size(); ++r) send(channel, r, m);
      channel.flush();
      throw;
    }
  }
  transport::TensorMessage m = transport::decode_tensor_message(channel.recv(0, protocol::kTag));
  const std::string kind = m.header.at("kind").get<std::string>();
  if (kind == protocol::kAbort) fail("rank 0 could not start the run: {}", m.header.at("error").get<std::string>());
  if (kind != protocol::kPlan) fail("rank {}: expected the plan from rank 0, got '{}'", channel.rank(), kind);
  return partition::plan_from_json(m.header.at("plan"));
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::equivalent(a, b, ec);
}

bool coordinator_message(std::string_view kind) {
  return kind == protocol::kRequest || kind == protocol::kDone || kind == protocol::kProgress ||
         kind == protocol::kResult;
}

}  // namespace

GroupPosition group_position(const partition::Plan& plan, int rank, int ranks) {
  if (int(plan.ranks.size()) != ranks)
    fail("the plan has {} rank(s) but the run has {} (start it with mpirun -np {})", plan.ranks.size(), ranks,
         plan.ranks.size());
  const partition::RankPlan& me = plan.ranks[size_t(rank)];
  GroupPosition pos;
  pos.group = me.group;
  pos.stage = me.stage;
  pos.stages = 0;
  for (const auto& r : plan.ranks) {
    if (r.group != me.group) continue;
    ++pos.stages;
    if (r.stage == 0) pos.leader = r.rank;
    if (r.stage == me.stage - 1) pos.previous = r.rank;
    if (r.stage == me.stage + 1) pos.next = r.rank;
  }
  for (const auto& r : plan.ranks)
    if (r.group == me.group && r.stage == pos.stages - 1) pos.last = r.rank;
  return pos;
}

DistributedOutcome run_distributed(transport::Channel& channel, const DistributedRun& o) {
  const int rank = channel.rank();
  DistributedOutcome outcome;
  std::vector<JobLine> todo;
  if (rank == 0) {
    std::filesystem::create_directories(o.out);
    const std::set<std::string> done = o.resume ? completed_jobs(o.out) : std::set<std::string>{};
    for (const JobLine& l : o.lines) {
      if (l.ok() && done.count(l.job->id)) {
        ++outcome.skipped;
        continue;
      }
      todo.push_back(l);
      // Every rank loads one model, so a job may not bring its own config here.
      if (l.ok() && l.job->config && !(o.config && same_file(*l.job->config, *o.config))) {
        JobLine& failed = todo.back();
        failed.error = fmt::format("{}{}job '{}': a job's own 'config' needs a single-process run (every rank "
                                   "of an mpirun run loads the run's model and --config)",
                                   o.jobs_file.empty() ? "" : o.jobs_file + ":", l.job->line ? std::to_string(l.job->line) + ": " : "",
                                   l.job->id);
        failed.job.reset();
      }
    }
    if (outcome.skipped) spdlog::info("--resume: {} job(s) already done in {}", outcome.skipped, o.out);
  }

  // Every rank opens the model (mapped, nothing read yet); rank 0 also plans with it.
  const models::ModelSource source = models::open_model(o.model, o.config);
  const auto network = models::make_network(source.config);
  models::check_weights_present(*network, *source.weights);
  const partition::Plan plan = share_plan(channel, o, source, *network);
  const GroupPosition pos = group_position(plan, rank, channel.size());
  const partition::RankPlan& mine = plan.ranks[size_t(rank)];
  if (rank == 0) spdlog::info("{}", partition::summarize(plan));

  BackendOptions backend_options = o.backend;
  backend_options.device_memory.clear();  // the plan's budget (a --device-memory went into the plan)
  adopt_plan_device(mine, backend_options, false, fmt::format("rank {}'s plan", rank));
  auto backend = make_backend(backend_options);
  runtime::WeightStore weights(*backend, *network, [&](const std::string& n) { return source.weights->find(n); },
                               mine, plan.host_share_bytes());
  const auto denoiser = models::make_denoiser(source.config);
  // Stage to stage on the device when every rank is on CUDA (the plan says so to every rank
  // alike, so all of them make the collective call or none does).
  std::unique_ptr<transport::DeviceLink> link;
  const bool pipelined = plan.group_count() < int(plan.ranks.size());
  const bool all_cuda = std::all_of(plan.ranks.begin(), plan.ranks.end(),
                                    [](const partition::RankPlan& r) { return r.device.starts_with("cuda:"); });
  if (pipelined && all_cuda && o.device_link) {
    try {
      link = o.device_link();
      spdlog::info("rank {}: stage states travel device to device ({})", rank, link->name());
    } catch (const Error& e) {
      spdlog::warn("rank {}: stage states travel through host memory: {}", rank, e.what());
    }
  }
  spdlog::debug("rank {}: stage {} of group {} ({} stage(s)), {} blocks", rank, pos.stage, pos.group, pos.stages,
                mine.blocks.size());

  std::optional<JobListSource> listed;
  JobSource* jobs = o.source;
  std::optional<Coordinator> coordinator;
  if (rank == 0) {
    if (!jobs) jobs = &listed.emplace(std::move(todo));
    std::map<int, std::string> groups;  // leader -> "rank 1" / "ranks 2-3"
    for (int g = 0; g < plan.group_count(); ++g) {
      std::vector<int> members;
      for (const auto& r : plan.ranks)
        if (r.group == g) members.push_back(r.rank);
      groups[members.front()] = members.size() == 1 ? fmt::format("rank {}", members.front())
                                                    : fmt::format("ranks {}-{}", members.front(), members.back());
    }
    coordinator.emplace(channel, *jobs, o.jobs_file, o.out, source.config, backend->name(), std::move(groups),
                        o.on_in_flight);
  }
  // Rank 0 has its weights; a group whose ranks are still loading asks for jobs when they are
  // done, so nothing waits on a barrier here.
  if (rank == 0 && o.on_ready) o.on_ready(plan);
  StageWorker worker(channel, *backend, *network, weights, *denoiser, pos, link.get());
  worker.start();
  const bool live = jobs && jobs->live();
  while (!worker.finished() || (coordinator && !coordinator->finished())) {
    // A live source's jobs arrive on other threads: between messages, hand them to waiting
    // leaders, and wait for either briefly (1 ms keeps pipeline hops prompt).
    if (live) {
      coordinator->poll();
      if (!channel.probe(transport::kAnySource, protocol::kTag)) {
        jobs->wait_for_jobs(std::chrono::milliseconds(1));
        continue;
      }
    }
    transport::Message raw = channel.recv(transport::kAnySource, protocol::kTag);
    transport::TensorMessage m = transport::decode_tensor_message(raw);
    const std::string kind = m.header.at("kind").get<std::string>();
    if (coordinator_message(kind)) {
      if (!coordinator) fail("rank {}: '{}' message from rank {} is for the coordinator", rank, kind, raw.source);
      coordinator->handle(std::move(m), raw.source);
    } else {
      worker.handle(std::move(m), raw.source);
    }
  }
  channel.flush();
  if (coordinator) {
    outcome.run = coordinator->run();
    outcome.failed = coordinator->failed();
  }
  return outcome;
}

}  // namespace ditrun::launcher
