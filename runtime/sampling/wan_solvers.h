// Wan's official multistep solvers for flow models (Wan-Video's wan/utils/fm_solvers*.py;
// ../shared/testdata/README.md "sampling loops" spells out every detail), as pure functions
// of the schedule, the velocity and the solver's own history, so that a step means the same
// under every layout of ranks:
//   unipc  FlowUniPCMultistepScheduler: UniPC bh2, data prediction, order 2 (1 at the first
//          and last step), with its corrector; Wan's default.
//   dpm++  FlowDPMSolverMultistepScheduler: DPM-Solver++ 2M (midpoint), first order at the
//          first and last step.
// Flow conventions: x = (1−σ)·x0 + σ·ε, the model gives v, the data estimate is m = x − σ·v,
// α = 1 − σ, λ = log(α/σ); a step into σ = 0 returns m.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "runtime/core/tensor.h"

namespace ditrun::runtime {

enum class WanSolver { unipc, dpmpp };

// "unipc" or "dpm++"; nullopt for other names.
std::optional<WanSolver> wan_solver_from_name(std::string_view name);

// The official schedule of `steps` steps at constant `shift`:
//   unipc: linspace(0.999 (float32 of 1 − 1/1000), 0, steps + 1) without the 0, shifted;
//   dpm++: linspace(1, 0, steps + 1) without the 0, shifted;
// then 0 appended. `timesteps[k]` is the integer the model gets: 1000·σ in double, truncated
// before σ is rounded to float32; `sigmas` are those float32 values (as doubles).
struct WanSchedule {
  std::vector<double> sigmas;     // steps + 1, the last 0
  std::vector<double> timesteps;  // steps, whole numbers
};
WanSchedule wan_schedule(WanSolver solver, int steps, double shift);

// What a multistep solver carries from one step to the next (it travels with the job).
struct SolverHistory {
  std::vector<HostTensor> estimates;  // data estimates m of earlier steps, oldest first (Wan's keep 2, ComfyUI's UniPC 3)
  HostTensor corrected;               // UniPC: the corrected sample x̂ of the last step
  int last_order = 0;                 // UniPC: the order of the last predictor
};

// Step `step` (0-based) of the schedule: x (the sample the model saw at sigmas[step]) moves
// to sigmas[step + 1] given the model's velocity v; `history` is read and updated. Each
// element is computed in double and rounded once to float. Fails on a shape mismatch or a
// step outside the schedule.
void wan_solver_step(WanSolver solver, std::span<const double> sigmas, int step, HostTensor& x, const HostTensor& v,
                     SolverHistory& history);

}  // namespace ditrun::runtime
