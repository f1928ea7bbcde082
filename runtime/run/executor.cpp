#include "runtime/run/executor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>

#include "runtime/core/error.h"
#include "runtime/run/coordinator.h"
#include "runtime/run/group.h"
#include "runtime/run/protocol.h"
#include "runtime/run/stage_worker.h"

namespace ditrun::runtime {
namespace {
using protocol::Kind;
namespace key = protocol::key;

// Rank 0 sends the plan (or why there is none) to every rank; the others receive it.
partition::Plan share_plan(transport::Channel& channel, const ExecutorSetup& setup) {
  if (channel.rank() == 0) {
    try {
      partition::Plan plan = setup.make_plan();
      transport::TensorMessage m = protocol::message(Kind::plan);
      m.header[key::plan] = partition::to_json(plan);
      for (int r = 1; r < channel.size(); ++r) protocol::send(channel, r, m);
      return plan;
    } catch (const Error& e) {
      transport::TensorMessage m = protocol::message(Kind::abort);
      m.header[key::error] = e.what();
      for (int r = 1; r < channel.size(); ++r) protocol::send(channel, r, m);
      channel.flush();
      throw;
    }
  }
  transport::TensorMessage m = transport::decode_tensor_message(channel.recv(0, protocol::kTag));
  const Kind kind = protocol::kind_of(m, 0);
  if (kind == Kind::abort) fail("rank 0 could not start the run: {}", m.header.at(key::error).get<std::string>());
  if (kind != Kind::plan) fail("rank {}: expected the plan from rank 0, got '{}'", channel.rank(), protocol::name(kind));
  return partition::plan_from_json(m.header.at(key::plan));
}

// With experts in phases, the leaders of the groups that run the low-noise expert.
std::set<int> low_noise_leaders(const partition::Plan& plan) {
  std::set<int> leaders;
  for (const partition::RankPlan& r : plan.ranks)
    if (r.expert == expert_name(Expert::low_noise) && r.stage == 0 && r.share == 0) leaders.insert(r.rank);
  return leaders;
}

bool for_coordinator(Kind kind) {
  return kind == Kind::request || kind == Kind::done || kind == Kind::progress || kind == Kind::result ||
         kind == Kind::handover;
}

// Stage to stage on the device when every rank is on CUDA: the plan says so to every rank
// alike, so all of them make the collective call or none does.
std::unique_ptr<transport::DeviceLink> open_device_link(const partition::Plan& plan, const ExecutorSetup& setup,
                                                        int rank) {
  const bool pipelined = plan.group_count() < int(plan.ranks.size());
  const bool all_cuda = std::all_of(plan.ranks.begin(), plan.ranks.end(),
                                    [](const partition::RankPlan& r) { return r.device.starts_with("cuda:"); });
  if (!pipelined || !all_cuda || !setup.device_link) return nullptr;
  try {
    auto link = setup.device_link();
    spdlog::info("rank {}: stage states travel device to device ({})", rank, link->name());
    return link;
  } catch (const Error& e) {
    spdlog::warn("rank {}: stage states travel through host memory: {}", rank, e.what());
    return nullptr;
  }
}

}  // namespace

ExecutorOutcome execute(transport::Channel& channel, const ExecutorSetup& setup) {
  const int rank = channel.rank();
  if (!setup.network || !setup.denoising || !setup.make_backend)
    fail("executor: rank {} has no network, denoising or backend factory", rank);
  if (rank == 0 && (!setup.source || !setup.sink || !setup.make_plan))
    fail("executor: rank 0 needs a job source, a sink and a plan");

  const partition::Plan plan = share_plan(channel, setup);
  const GroupPosition pos = group_position(plan, rank, channel.size());
  const partition::RankPlan& mine = plan.ranks[size_t(rank)];
  if (rank == 0) {
    std::string summary = partition::summarize(plan);
    if (summary.ends_with('\n')) summary.pop_back();
    spdlog::info("{}", summary);
    spdlog::info("plan: {} on {}, predicted {:.3f} s per step", partition::to_string(plan.mode), mine.device,
                 plan.predicted.step_seconds);
  }

  auto backend = setup.make_backend(mine);
  StageWeights weights(*backend, *setup.network, setup.find_weight, mine, plan.host_share_bytes(),
                       plan.experts ? plan.experts->strategy : partition::ExpertStrategy::both);
  const std::unique_ptr<transport::DeviceLink> link = open_device_link(plan, setup, rank);
  spdlog::debug("rank {}: stage {} of group {} ({} stage(s)), {} blocks", rank, pos.stage, pos.group, pos.stages,
                mine.blocks.size());

  std::optional<Coordinator> coordinator;
  if (rank == 0)
    coordinator.emplace(channel, *setup.source, *setup.sink, group_names(plan), backend->name(),
                        plan.predicted.step_seconds, setup.on_in_flight, low_noise_leaders(plan));
  // Rank 0 has its weights; a group whose ranks are still loading asks for jobs when they are
  // done, so nothing waits on a barrier here.
  if (rank == 0 && setup.on_ready) setup.on_ready(plan);
  StageWorker worker(channel, *backend, *setup.network, weights, *setup.denoising, pos, link.get());
  worker.start();
  const bool live = coordinator && setup.source->live();
  while (!worker.finished() || (coordinator && !coordinator->finished())) {
    // A live source's jobs arrive on other threads: between messages, hand them to waiting
    // leaders, and wait for either briefly (1 ms keeps pipeline hops prompt).
    if (live) {
      coordinator->poll();
      if (!channel.probe(transport::kAnySource, protocol::kTag)) {
        setup.source->wait_for_jobs(std::chrono::milliseconds(1));
        continue;
      }
    }
    transport::Message raw = channel.recv(transport::kAnySource, protocol::kTag);
    transport::TensorMessage m = transport::decode_tensor_message(raw);
    const Kind kind = protocol::kind_of(m, raw.source);
    if (for_coordinator(kind)) {
      if (!coordinator)
        fail("rank {}: '{}' message from rank {} is for the coordinator", rank, protocol::name(kind), raw.source);
      coordinator->handle(std::move(m), raw.source);
    } else {
      worker.handle(std::move(m), raw.source);
    }
  }
  channel.flush();
  ExecutorOutcome outcome;
  if (coordinator) {
    outcome.run = coordinator->run();
    outcome.failed = coordinator->failed();
  }
  return outcome;
}

}  // namespace ditrun::runtime
