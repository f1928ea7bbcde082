// One job as the executor samples it, whatever it came from (a job file's line, an HTTP
// request): its conditioning, guidance, starting latent and sigma schedule. The launcher
// prepares it (files read, sizes checked); the ranks carry it between them in messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/exec/expert_pair.h"
#include "runtime/exec/model.h"
#include "runtime/sampling/schedule.h"
#include "runtime/sampling/wan_solvers.h"
#include "transport/tensor_message.h"

namespace ditrun::runtime {

// A job's conditioning, from its cond file: Flux `txt` [L, ctx] and `y` [vec]; Wan
// `context` [L, text_dim] and, for cfg != 1, `context_neg` [L', text_dim].
struct Conditioning {
  HostTensors tensors;
  std::string source;  // the file, for messages
};

struct Guidance {
  double guidance = 0;  // Flux-dev embedded guidance
  double cfg = 1;       // classifier-free guidance scale; 1 = off
};

// A model of two experts (runtime/exec/expert_pair.h, Wan 2.2 A14B): the high-noise expert
// runs the steps whose model timestep t is at least boundary x 1000, with the job's
// `guidance.cfg`; the low-noise expert runs the rest with `cfg_low`.
struct ExpertSwitch {
  double boundary = 0.875;  // a fraction of the 1000 training timesteps, in (0, 1)
  double cfg_low = 1;
};

// A conditioning tensor [C, Ff, H, W]: the first Ff latent frames the job holds fixed (Wan 2.2
// TI2V's image-to-video: the image's latent). The job starts with them, they are reset to it
// after every step, and the model sees their tokens at t = 0.
inline constexpr std::string_view kFixedFrames = "fixed_frames";

// x [C, F, H, W] with its first frames replaced by `fixed` [C, Ff, H, W]; fails on shapes
// that do not fit.
void reset_fixed_frames(HostTensor& x, const HostTensor& fixed);

struct SamplingJob {
  std::string id;
  int line = 0;                  // its line in a job file (0: none), for messages
  std::optional<uint64_t> seed;  // recorded with the outputs (none: the latent came from a file)
  Conditioning cond;
  // Set when `cond` was encoded from prompts: recorded in the pictures' parameters.
  std::optional<std::string> prompt, negative_prompt;
  Guidance guidance;
  HostTensor x;                  // the starting latent
  Shift shift;
  std::vector<double> sigmas;    // steps + 1 values, the last 0
  // A name of runtime/sampling/sampler.h; Wan's official "unipc" / "dpm++" on their own
  // schedule also give the model's integer timestep per step (`timesteps`; empty: the
  // family's function of sigma).
  std::string sampler = "euler";
  std::string scheduler = "model";  // how `sigmas` were made: the model's own, or ComfyUI's (comfy_schedules.h)
  std::vector<double> timesteps;
  std::optional<ExpertSwitch> experts;  // set for (and only for) a model of two experts
  int steps() const { return int(sigmas.size()) - 1; }
  // The model's timestep at `step`: the sampler's integer one, else 1000·σ.
  double timestep_at(int step) const;
  // The expert of `step` (nullopt: a one-expert job) and the guidance it runs with.
  std::optional<Expert> expert_at(int step) const;
  Guidance guidance_at(int step) const;
};

// A sampler's history as tensors of a message ("history/estimate.N", "history/corrected",
// header "history_order"), for a job that moves from one group to another; take_history
// removes them and returns none when the message has none.
void put_history(const SolverHistory& history, transport::TensorMessage& message);
std::optional<SolverHistory> take_history(transport::TensorMessage& message);

// A job as a message (to the rank that runs it) and back: the schedule travels exactly (JSON
// doubles round-trip), the conditioning under "cond/<name>", the latent as "x".
void put_job(const SamplingJob& job, transport::TensorMessage& message);
SamplingJob take_job(transport::TensorMessage& message);

}  // namespace ditrun::runtime
