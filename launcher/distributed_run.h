// `ditrun run` and `ditrun serve` over the ranks of a channel: mpirun processes, threads in
// tests, or this one process as a one-rank group on a local channel. The launcher's part is
// here: the model opened on every rank, the plan made (or read) on rank 0 for the run's
// ranks, each rank's backend, jobs from job lines (or a server's board) and their outputs and
// ledger lines; the runtime's executor (runtime/run/executor.h) runs it all.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "launcher/backend_options.h"
#include "launcher/job_file.h"
#include "launcher/job_source.h"
#include "launcher/picture_output.h"
#include "launcher/planning.h"
#include "launcher/text_encoders.h"
#include "transport/channel.h"
#include "transport/device_link.h"

namespace ditrun::launcher {

struct DistributedRun {
  std::string model;
  std::optional<std::string> config;
  std::optional<std::string> low_noise;  // a model of two experts: the low-noise checkpoint (`model` the high-noise one)
  std::string out;
  std::string jobs_file;        // for messages ("" when the job came from flags)
  std::vector<JobLine> lines;   // rank 0's; other ranks ignore them
  // Rank 0: a source to take the jobs from instead of `lines` (`ditrun serve`'s job board);
  // not owned. `plan_for` sizes the plan when the jobs are not known in advance.
  JobLineSource* source = nullptr;
  std::optional<models::JobSettings> plan_for;
  // Rank 0: called once rank 0 has its weights loaded, before the first job.
  std::function<void(const partition::Plan&)> on_ready;
  bool resume = false;
  BackendOptions backend;
  PictureOptions pictures;  // rank 0: the VAE that decodes final latents, and previews
  TextEncoderOptions encoders;  // rank 0: the text encoders of jobs' prompts (none given: such jobs fail)
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

// On a one-rank channel, consecutive job lines that name the same config run as one segment
// (the model is opened once per segment), so a job may bring its own config; on more ranks
// every rank loads the run's model and such a job fails.
DistributedOutcome run_distributed(transport::Channel& channel, const DistributedRun& run);

// The plan as `ranks` ranks run it. One process runs a plan whose rank 0 renders a job alone:
// of a plan of replicas it runs rank 0's share (with a warning); a plan that splits a job
// over several ranks fails, naming the ranks it needs. More ranks run the plan as it is.
partition::Plan plan_for_ranks(partition::Plan plan, int ranks);

}  // namespace ditrun::launcher
