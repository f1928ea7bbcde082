// What every rank of a run does with its share of the model: its stage of each step of each
// job that flows through its group, the pipeline schedule of handle() (stage_worker.cpp).
//
//   leader (stage 0)  asks the coordinator for jobs (as many at once as the group has stages,
//                     so every stage has work: jobs are the micro-batches of the pipeline),
//                     turns each step's latent into the network inputs and runs its stage
//   middle stages     run their blocks on the state from the previous stage and pass it on
//   last stage        finishes the network call, turns the output into the velocity, takes
//                     the Euler step, checks the latent is finite, and sends it back to the
//                     leader for the next step, or the result to the coordinator
//
// Under a plan that swaps a two-expert model's experts (stage_weights.h) a group renders one
// job at a time, so each rank loads the other expert twice per job rather than every step.
//
// A one-stage group is all three on one rank; it sends each next step to itself, so the rank
// still answers messages between steps. A job that fails anywhere is reported once, by the
// last stage or by the leader, and its slot is freed; the group goes on with other jobs.
//
// A stage may be a team (sequence and CFG parallelism): its primary takes part in the
// pipeline as above and, for every step it runs, first shares the stage's input with the
// other members, which run the same stage on their share of the job (JobSplit) and answer
// nothing: the shares meet on the primary inside the stage. A job without classifier-free
// guidance in a CFG team has nothing to split by batch: the whole team splits its tokens.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "runtime/exec/stage.h"
#include "runtime/exec/stage_weights.h"
#include "transport/rank_group.h"
#include "runtime/exec/state_message.h"
#include "runtime/run/denoising.h"
#include "runtime/run/group.h"
#include "runtime/sampling/wan_solvers.h"
#include "transport/channel.h"
#include "transport/device_link.h"
#include "transport/tensor_message.h"

namespace ditrun::runtime {

class StageWorker {
 public:
  // `link`: stage states travel device to device over it (NCCL between CUDA ranks); null:
  // through host memory in the channel's messages.
  StageWorker(transport::Channel& channel, Backend& backend, const Model& network, StageWeights& weights,
              const Denoising& denoising, GroupPosition position, transport::DeviceLink* link = nullptr);

  void start();  // the leader's first requests
  // job, stop, state, latent
  void handle(transport::TensorMessage message, int source);
  bool finished() const { return finished_; }

 private:
  void run_first_stage(int64_t index, int step, HostTensor x);  // leader
  // This stage on one step of a job: shared with the team first when there is one.
  StageOutput run_step(int64_t index, int step, bool guided, const HostTensors* inputs, ActivationState state);
  void run_shared_step(transport::TensorMessage m);  // team member
  JobSplit split_for(bool guided);
  // The stage's result onward: the next stage's state, or (last stage) the end of the call.
  void pass_on(transport::TensorMessage m, StageOutput out);
  void finish_step(transport::TensorMessage m, HostTensor output);  // last stage
  void job_over(int64_t index);                                     // leader
  // `here`: the failure happened on this rank (the message says where); else it is passed on.
  void report_failure(int64_t index, int step, const std::string& error, bool here = true);
  void request_job();
  void maybe_finish();
  void stop_team();  // primary: its team members are done too
  void send(int peer, const transport::TensorMessage& m);
  transport::DeviceLink* device_link(int source) const;  // fails when there is none

  transport::Channel& channel_;
  Backend& backend_;
  const Model& network_;
  StageWeights& weights_;
  const Denoising& denoising_;
  GroupPosition pos_;
  UnitRange units_;
  std::map<int64_t, SamplingJob> active_;  // leader: jobs in the group, by coordinator index
  std::map<int64_t, SolverHistory> histories_;  // last stage: a multistep solver's history, by job index
  std::map<int64_t, SolverHistory> resumed_histories_;  // leader: handed-on jobs' histories, until their first step
  int outstanding_requests_ = 0;
  bool stopped_ = false, finished_ = false;
  transport::DeviceLink* link_ = nullptr;
  Stream transfers_;                  // the link's stream
  std::deque<PendingSend> sends_;     // device sends whose memory is still in use
  // The team's collectives (none for a stage of one rank): the members with this one's CFG
  // half (tokens), those with its token share (items), and all of them (the team).
  std::optional<transport::RankGroup> tokens_group_, items_group_, team_group_;
  std::unique_ptr<SequenceParallel> tokens_, team_tokens_;
  std::unique_ptr<BatchParallel> items_;
  bool told_unguided_ = false;
};

}  // namespace ditrun::runtime
