// One job as the executor samples it, whatever it came from (a job file's line, an HTTP
// request): its conditioning, guidance, starting latent and sigma schedule. The launcher
// prepares it (files read, sizes checked); the ranks carry it between them in messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/exec/model.h"
#include "runtime/sampling/schedule.h"
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
  // "euler", or Wan's official "unipc" / "dpm++" (wan_solvers.h), which also give the model's
  // integer timestep per step (`timesteps`; empty: the family's function of sigma).
  std::string sampler = "euler";
  std::vector<double> timesteps;
  int steps() const { return int(sigmas.size()) - 1; }
};

// A job as a message (to the rank that runs it) and back: the schedule travels exactly (JSON
// doubles round-trip), the conditioning under "cond/<name>", the latent as "x".
void put_job(const SamplingJob& job, transport::TensorMessage& message);
SamplingJob take_job(transport::TensorMessage& message);

}  // namespace ditrun::runtime
