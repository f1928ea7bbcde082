// What the ranks of a run say to each other. Every message is a transport::TensorMessage
// with a header "kind" and the keys below, all on one tag (so order holds across kinds):
//
//   rank 0 -> every rank, first
//     plan      the plan every rank follows ("plan": Plan JSON), or
//     abort     rank 0 could not start ("error"); every rank stops
//   coordinator (rank 0) <-> group leaders (stage 0 of each group)
//     request   leader -> coordinator   room for one more job
//     job       coordinator -> leader   a SamplingJob (sampling_job.h), "index"
//     stop      coordinator -> leader   no more jobs (answers a request, like job)
//     done      leader -> coordinator   every request answered, every job finished
//   along a pipeline group
//     state     stage s -> s+1          one step of one job: "index", "step", "job" (id,
//                                       schedule, guidance), the latent "x" and the activation
//                                       state (in the message, or device to device: see
//                                       runtime/exec/state_message.h); "error" set when an
//                                       earlier stage failed the job
//     latent    last stage -> leader    the latent after the step ("step" = the next one), or
//                                       "finished" when the job is over (done or failed)
//     stop      stage s -> s+1          the leader is done; passed down the pipeline
//   within a stage's team (sequence / CFG parallel: partition/plan.h)
//     share     primary -> team member  one step of one job: "index", "step", "split" ("cfg":
//                                       CFG halves, then tokens; "tokens": the whole team
//                                       splits tokens) and the stage's input: the network
//                                       inputs ("in/<name>") or the activation state
//     stop      primary -> team member  the primary is done
//   last stage -> coordinator
//     progress  a step finished ("index", "step", "memory": each rank's device memory, noted
//               by every stage on the step's way: {"RANK": {device, limit, in_use, peak}})
//     result    the job is over: "status" done (with the final "x" and "memory") or failed
//               ("error"), "steps"
//     handover  (experts in phases) the high-noise phase is over: "index", "step" (the first
//               low-noise step), the latent "x" and the sampler's history ("history/...")
//   coordinator -> a low-noise group's leader
//     job       with "resume": the job goes on at "step" from "x", its sampler history in the
//               message (the leader passes it to the last stage with the step's state)
//
// Messages from one rank to another arrive in the order sent (transport/channel.h), which is
// what makes "stop" safe to pass down a pipeline after the last "state".
#pragma once

#include <string_view>

#include "transport/channel.h"
#include "transport/tensor_message.h"

namespace ditrun::runtime::protocol {

inline constexpr int kTag = 7;
// The collectives of a stage's team, each on a tag of its own (transport/rank_group.h).
inline constexpr int kTokensTag = 31, kItemsTag = 32, kTeamTag = 33;

enum class Kind { request, job, stop, done, state, latent, progress, result, plan, abort, share, handover };
std::string_view name(Kind kind);

// The header keys, owned here and nowhere else.
namespace key {
inline constexpr const char* kind = "kind";
inline constexpr const char* index = "index";      // the coordinator's number for a job
inline constexpr const char* step = "step";
inline constexpr const char* steps = "steps";
inline constexpr const char* job = "job";          // a state's job facts (sampling_of)
inline constexpr const char* memory = "memory";
inline constexpr const char* error = "error";
inline constexpr const char* finished = "finished";
inline constexpr const char* status = "status";    // "done" | "failed"
inline constexpr const char* plan = "plan";
inline constexpr const char* split = "split";      // share: "cfg" | "tokens"
inline constexpr const char* resume = "resume";    // job: goes on at "step" (experts in phases)
}  // namespace key

// A message of `kind`, nothing else in it yet.
transport::TensorMessage message(Kind kind);
// The message's kind; fails naming the unknown kind and the sender.
Kind kind_of(const transport::TensorMessage& message, int source);
void send(transport::Channel& channel, int peer, const transport::TensorMessage& message);

}  // namespace ditrun::runtime::protocol
