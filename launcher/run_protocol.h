// What the ranks of a distributed `ditrun run` say to each other. Every message is a
// transport::TensorMessage whose header has "kind":
//
//   coordinator (rank 0) <-> group leaders (stage 0 of each group)
//     request   leader -> coordinator   room for one more job
//     job       coordinator -> leader   a prepared job (launcher/job_sampling.h), "index"
//     stop      coordinator -> leader   no more jobs (answers a request, like job)
//     done      leader -> coordinator   every request answered, every job finished
//   along a pipeline group
//     state     stage s -> s+1          one step of one job: "index", "step", "job" (schedule,
//                                       guidance), the latent "x" and the activation state;
//                                       "error" set when an earlier stage failed the job
//     latent    last stage -> leader    the latent after the step ("step" = the next one), or
//                                       "finished" when the job is over (done or failed)
//     stop      stage s -> s+1          the leader is done; passed down the pipeline
//   last stage -> coordinator
//     progress  a step finished ("index", "step", "memory": each rank's device memory, noted
//               by every stage on the step's way: {"RANK": {device, limit, in_use, peak}})
//     result    the job is over: "status" done (with the final "x" and "memory") or failed
//               ("error")
//   rank 0 -> everyone, before all of that
//     plan      the plan every rank follows ("plan": Plan JSON), or
//     abort     rank 0 could not start ("error"); every rank stops
//
// Messages from one rank to another arrive in the order sent (transport/channel.h), which is
// what makes "stop" safe to pass down a pipeline after the last "state".
#pragma once

#include <string_view>

namespace ditrun::launcher::protocol {

inline constexpr int kTag = 7;  // every message of a run uses one tag: order holds across kinds

inline constexpr std::string_view kRequest = "request", kJob = "job", kStop = "stop", kDone = "done",
                                  kState = "state", kLatent = "latent", kProgress = "progress",
                                  kResult = "result", kPlan = "plan", kAbort = "abort";

}  // namespace ditrun::launcher::protocol
