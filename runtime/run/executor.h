// The one executor of ditrun: a run over the ranks of a channel (mpirun processes, threads in
// tests, or a single process as a one-rank group on a local channel). Rank 0 makes the plan
// and sends it to every rank; each rank places only the blocks its share of the plan names,
// on its own backend; then rank 0 coordinates (coordinator.h) while every rank, rank 0
// included, runs its stage of the jobs that flow through its group (stage_worker.h).
//
// What the executor needs from the layers above arrives as callbacks and interfaces, so it
// knows no file formats and no model families: the launcher opens the model, prepares jobs
// and writes outputs.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "partition/plan.h"
#include "runtime/backend/backend.h"
#include "runtime/exec/model.h"
#include "runtime/exec/weight_store.h"
#include "runtime/run/denoising.h"
#include "runtime/run/job_source.h"
#include "transport/channel.h"
#include "transport/device_link.h"

namespace ditrun::runtime {

struct ExecutorSetup {
  // Every rank: the model's blocks, where their weights are read from, and the family's
  // sampler-step maths. Not owned.
  const Model* network = nullptr;
  WeightStore::FindSource find_weight;
  const Denoising* denoising = nullptr;
  // Rank 0: the plan every rank follows. A ditrun::Error from it stops every rank with it.
  std::function<partition::Plan()> make_plan;
  // Every rank: the backend for its share of the plan (the rank's device and budget).
  std::function<std::unique_ptr<Backend>(const partition::RankPlan& mine)> make_backend;
  // Collective, every rank: a device-to-device link between all ranks (NCCL over mpirun).
  // Called when the plan has pipeline stages and every rank is on CUDA; unset, or failing
  // (two ranks on one GPU), the stage states go through host memory.
  std::function<std::unique_ptr<transport::DeviceLink>()> device_link;
  // Rank 0: where jobs come from and where results go. Not owned.
  JobSource* source = nullptr;
  JobSink* sink = nullptr;
  // Rank 0: once rank 0 has its weights placed, before the first job.
  std::function<void(const partition::Plan&)> on_ready;
  std::function<void(const std::string&)> on_in_flight;  // rank 0: the jobs in flight, when they change
};

struct ExecutorOutcome {
  size_t run = 0, failed = 0;  // rank 0's counts (jobs handed out, jobs failed); zero elsewhere
};

// Returns when every job is over on every rank. Throws ditrun::Error when the run cannot go
// on (a bad plan, a rank that cannot place its weights); jobs that fail are only counted.
ExecutorOutcome execute(transport::Channel& channel, const ExecutorSetup& setup);

}  // namespace ditrun::runtime
