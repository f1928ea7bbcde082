// `ditrun run` over the ranks of a channel (mpirun processes, or threads in tests): rank 0
// makes (or reads) the plan and sends it to every rank; each rank loads only the blocks its
// share of the plan names, on its own backend; then rank 0 coordinates (run_coordinator.h)
// while every rank, rank 0 included, runs its stage of the jobs that flow through its group
// (run_stage_worker.h). Outputs and the ledger are written by rank 0 alone, exactly as the
// single-process run writes them, and are bit-identical to it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "launcher/backend_options.h"
#include "launcher/job_file.h"
#include "launcher/job_source.h"
#include "launcher/planning.h"
#include "launcher/run_stage_worker.h"
#include "transport/channel.h"
#include "transport/device_link.h"

namespace ditrun::launcher {

struct DistributedRun {
  std::string model;
  std::optional<std::string> config;
  std::string out;
  std::string jobs_file;        // for messages ("" when the job came from flags)
  std::vector<JobLine> lines;   // rank 0's; other ranks ignore them
  // Rank 0: a source to take the jobs from instead of `lines` (`ditrun serve`'s job board);
  // not owned. `plan_for` sizes the plan when the jobs are not known in advance.
  JobSource* source = nullptr;
  std::optional<models::JobSettings> plan_for;
  // Rank 0: called once rank 0 has its weights loaded, before the first job.
  std::function<void(const partition::Plan&)> on_ready;
  bool resume = false;
  BackendOptions backend;
  DeviceOptions devices;
  std::optional<std::string> plan_path;
  std::function<void(const std::string&)> on_in_flight;  // rank 0: the jobs in flight, when they change
  // Collective: a device-to-device link between every rank (NCCL over the mpirun session).
  // Called on every rank when the plan has pipeline stages and every rank is on CUDA; unset, or
  // failing (two ranks on one GPU), the states go through host memory.
  std::function<std::unique_ptr<transport::DeviceLink>()> device_link;
};

struct DistributedOutcome {
  size_t run = 0, failed = 0, skipped = 0;  // rank 0's counts; zero elsewhere
};

DistributedOutcome run_distributed(transport::Channel& channel, const DistributedRun& run);

// The rank layout of a plan, checked against the rank count: fails naming the mismatch.
GroupPosition group_position(const partition::Plan& plan, int rank, int ranks);

}  // namespace ditrun::launcher
