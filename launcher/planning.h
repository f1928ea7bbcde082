// Planning a job from the command line's point of view: the model (a checkpoint, or a preset
// in a target encoding with no file at all), the job's size, the devices (this machine or a
// --devices description), the allocation string and reserves; out comes the solver's Plan with
// everything it was made from. `ditrun plan` prints it; `ditrun run` follows it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "launcher/backend_options.h"
#include "launcher/job_file.h"
#include "models/pipeline/job_geometry.h"
#include "models/pipeline/model_cost.h"
#include "models/pipeline/model_files.h"
#include "partition/allocation_spec.h"
#include "partition/device_spec.h"
#include "partition/plan.h"
#include "partition/solver.h"

namespace ditrun::launcher {

// Which devices, and how much of each, a plan may use.
struct DeviceChoice {
  std::string inventory;   // --devices (partition::parse_device_override); empty: this machine
  std::string allocation;  // --allocation (partition::parse_allocation); empty: every GPU *, cpu *
  uint64_t reserve_vram_bytes = 0;
  partition::Objective objective = partition::Objective::latency;
  // --device-memory: plan for the CPU backend with a device budget (the one compute device,
  // named "cpu"): blocks that do not fit stream from the pinned pool as on a GPU of that
  // size. Only without GPUs. 0: the CPU runs everything resident in host RAM.
  uint64_t cpu_device_memory_bytes = 0;
  // The plan is for the CPU backend (`--backend cpu`, or no GPU): GPUs of the inventory are
  // left out; a --devices that names GPUs is an error.
  bool cpu_backend = false;
  // Ranks of the CPU backend to plan for (mpirun -np N on CPUs), each a device "cpu:N".
  int cpu_ranks = 1;
  // The plan is for CUDA backends, one GPU per rank (0: not a CUDA run). Unless --devices
  // describes them, every rank's GPU is taken to be like this process's `cuda_device` (ranks
  // on other nodes cannot be seen from here), named cuda:0.. in rank order; one rank keeps
  // its device's own name.
  int gpu_ranks = 0;
  int cuda_device = 0;
  // Bytes per activation element on the GPUs: bf16 (2), or 4 for the CUDA backend's f32 mode.
  int gpu_activation_bytes = 2;
  // --mode / --stages: the shape the plan must have (see parse_mode); ranks are the CPU ranks,
  // or the GPUs with a budget.
  std::string mode = "auto";
  int stages = 0;
  // Each position a team of sequence_parallel x cfg_parallel ranks sharing one job's step
  // (--sp, --cfg-parallel): the activations each rank needs are priced for its share (its
  // 1/sequence_parallel of the image tokens, its CFG half). With gpus_form_teams (`ditrun
  // plan`) the inventory's GPUs are the teams' ranks: blocks are placed on the first 1/team of
  // them, one per position, and share_planned_steps makes each position a team.
  int sequence_parallel = 1, cfg_parallel = 1;
  bool gpus_form_teams = false;
  // Rank 0's GPU also decodes every job's pictures (--vae): the VAE's weights and a decode's
  // activations (picture_output.h, RunVae::device_bytes) are kept out of its budget.
  uint64_t vae_bytes = 0;
  // Rank 0's GPU also runs the text encoders, when the plan keeps room for them
  // (plan_with_encoders, text_encoders.h): kept out of its budget like the VAE's.
  uint64_t encoder_bytes = 0;
  int team() const { return sequence_parallel * cfg_parallel; }
};

// --mode auto|pipeline|replicas [--stages K] for `ranks` ranks: auto is free; pipeline is one
// group of every rank; replicas is groups of K stages (default 1).
partition::Layout parse_mode(const std::string& mode, int stages, int ranks);

// A plan JSON file (`ditrun plan --out`), validated; errors name the file.
partition::Plan read_plan_file(const std::string& path);

// The job a run's plan is made for: the one with the most latent pixels (activations grow
// with them), its prompt length read from its conditioning when it has one.
models::JobSettings largest_job_settings(const std::vector<JobLine>& lines, const arch::ModelConfig& config);

// --reserve-vram as ComfyUI takes it, a number of GB (1024^3 bytes), or a size ("512mb").
uint64_t parse_reserve_vram(const std::string& text);

// The command-line options behind a DeviceChoice, shared by `plan` and `run`.
struct DeviceOptions {
  std::string inventory, allocation, reserve_vram, objective, device_memory, mode = "auto";  // --devices is `inventory`; objective "": default
  int stages = 0;
  // Ranks that share each stage of one job: --sp N (its tokens), --cfg-parallel (its CFG halves).
  int sequence_parallel = 1;
  int ring = 0;  // --ring K: ring attention over K of the sequence ranks (0: by the head count)
  bool cfg_parallel = false;
  int team_size() const { return sequence_parallel * (cfg_parallel ? 2 : 1); }
  DeviceChoice choice() const;
};
// `with_device_memory`: also register --device-memory (`run` has it among its backend options).
void add_device_options(CLI::App& cmd, DeviceOptions& options, bool with_device_memory);
// --sp and --cfg-parallel (runs under mpirun).
void add_sharing_options(CLI::App& cmd, DeviceOptions& options);

// What a run plans for: `ranks` ranks on the backend `backend` resolves to (the CPU backend's
// budget, or one GPU per rank like this process's), shaped by the device options.
DeviceChoice run_device_choice(const DeviceOptions& devices, const BackendOptions& backend, int ranks);

// A plan's rank on this run's backend: `backend` set to the plan's kind when it was auto, the
// device budget taken from the plan (CPU budget, or the CUDA arena), the GPU from a cuda:N
// name in a one-process run. Fails naming `what` (the plan file) when the two disagree.
void adopt_plan_device(const partition::RankPlan& rank, BackendOptions& backend, bool single_process,
                       std::string_view what);

// A model already resolved into its network and stored weights, planned for one job.
struct ModelPlan {
  partition::ModelCost cost;  // activations priced for the devices the plan runs on
  partition::DeviceInventory inventory;
  partition::Budgets budgets;
  partition::Plan plan;
};

// The cost (bf16 activations, or f32 when no GPU gets a budget and the CPU runs the model),
// the budgets and the solver's plan. Throws ditrun::Error when nothing fits, with the
// solver's message naming the shortfall. A model of two experts is planned both ways
// (partition::ExpertStrategy: both experts on every rank, or one at a time swapped twice per
// job) and the faster for the objective kept; the plan's `experts` says which and what the
// other would take.
ModelPlan plan_model(const arch::ModelConfig& config, const runtime::Model& network,
                     const models::FindStoredWeight& weights, const models::JobGeometry& job,
                     const DeviceChoice& devices);

// --sp / --cfg-parallel on a plan made for the stages' positions: every position becomes a
// team, priced again for the shared step at the positions' rates (partition::share_steps).
partition::Plan share_planned_steps(const ModelPlan& planned, const DeviceOptions& devices,
                                    const arch::ModelConfig& config);

// The latency objective's choice between whole steps and teams on `count` devices (ranks or
// GPUs): every team size dividing `count` as sequence parallel, and for a guided job (batch
// of two) with CFG halves too, each planned by plan_for(team) for count / team positions and
// priced shared. A team is taken when it predicts a step at least 5% shorter than whole
// steps; `why` says what was compared. Candidates that do not fit are left out.
struct SharingChoice {
  ModelPlan planned;  // of the chosen positions (its cost priced for one team member's share)
  partition::Plan plan;
  int sequence_parallel = 1;
  bool cfg_parallel = false;
  std::string why;
};
SharingChoice fastest_sharing(int count, const models::JobGeometry& job, const arch::ModelConfig& config,
                              const std::function<ModelPlan(const DeviceOptions& sharing)>& plan_for);

struct PlanRequest {
  std::string model;                   // a .safetensors / .gguf checkpoint, or a preset name
  std::optional<std::string> config;   // sidecar config for a checkpoint
  std::optional<std::string> low_noise;  // a checkpoint's low-noise expert (`model` the high-noise one)
  std::optional<std::string> weights;  // presets only: the encoding (`ditrun synth --weights`), default bf16
  models::JobSettings job;
  DeviceChoice devices;
};

struct JobPlan {
  std::string model;  // what was planned: "flux-dev preset, q8_0 weights" or "<path> (flux-dev)"
  arch::ModelConfig config;
  models::JobGeometry job;
  ModelPlan planned;
};

// How a plan runs a model of two experts (Wan 2.2 A14B): every rank holds its blocks of both
// experts (resident, or streamed with both experts' bytes when they do not fit), one expert
// computes per step; with the model's default sampler, shift and boundary, how many steps
// each runs. "" for a one-expert model.
std::string describe_experts(const arch::ModelConfig& config, const partition::Plan& plan);
// The steps of a `steps`-step job the high-noise expert runs (the model's default sampler,
// shift and boundary); 0 for a one-expert model.
int high_noise_steps(const arch::ModelConfig& config, int steps);

// A path that exists is a checkpoint (read with models::open_model, --weights is then an
// error); anything else must name a preset (arch::preset_names()).
JobPlan plan_job(const PlanRequest& request);
// The job plan_job would plan (config and geometry), without planning it.
models::JobGeometry job_of(const PlanRequest& request, arch::ModelConfig* config = nullptr);

}  // namespace ditrun::launcher
