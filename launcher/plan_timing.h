// Predicted against measured: renders model calls of one job with a plan's placement on the
// CPU backend (device memory budgeted to the plan's rank, streamed blocks through the pinned
// pool and the copy stream) and times them. The planner's step-time test and the offload
// benchmark both stand on it.
#pragma once

#include <string>

#include "models/pipeline/denoiser.h"
#include "models/pipeline/model_source.h"
#include "partition/plan.h"
#include "runtime/backend/backend.h"
#include "runtime/backend/cpu_backend.h"

namespace ditrun::launcher {

struct PlanTiming {
  double predicted_step_seconds = 0;  // the plan's
  double measured_step_seconds = 0;   // median of timed steps after a warm-up
  runtime::MemoryStats memory;        // the backend's device memory over the whole run
  uint64_t streamed_bytes = 0;        // per step
  double ratio() const { return measured_step_seconds / predicted_step_seconds; }
};

// One sampler step = one velocity evaluation of a `latent`-shaped job (both CFG halves for
// Wan), conditioned by `cond_path`. The plan's rank 0 must run on "cpu" and hold the whole
// model; its budget_bytes becomes the backend's device-memory limit, so a plan that
// underestimates memory fails here instead of passing unnoticed.
PlanTiming time_plan(const models::ModelSource& source, const runtime::Model& network, const partition::Plan& plan,
                     const Shape& latent, const std::string& cond_path, const runtime::Guidance& guidance,
                     runtime::CpuBackendOptions backend_options, double budget_seconds);

}  // namespace ditrun::launcher
