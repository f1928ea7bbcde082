// `ditrun run [MODEL] (--jobs jobs.jsonl | single-job flags) --out DIR [--resume]`: samples
// every job and writes DIR/<id>.safetensors (tensor `latent`), DIR/<id>.png (preview) and a
// line per job in DIR/ledger.jsonl. Without MODEL, the built-in tiny Flux renders.
// --plan plan.json (from `ditrun plan`) places the weights; without one, run plans by
// itself for its largest job (and refuses, before loading anything, a model that does not fit).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <functional>
#include <memory>

#include "launcher/backend_options.h"
#include "launcher/builtin_model.h"
#include "launcher/commands.h"
#include "launcher/job_file.h"
#include "launcher/models_dir.h"
#include "launcher/ledger.h"
#include "launcher/abort_report.h"
#include "launcher/distributed_run.h"
#include "launcher/planning.h"
#include "runtime/core/progress.h"
#include "models/pipeline/model_cost.h"
#include "models/pipeline/noise_file.h"
#include "models/pipeline/tensor_files.h"
#include "models/pipeline/model_source.h"
#include "partition/plan.h"
#include "runtime/core/units.h"
#include "runtime/core/error.h"
#include "transport/device_link.h"
#include "transport/mpi_channel.h"
#include "transport/local_channel.h"
#include "transport/mpi_session.h"

namespace ditrun::launcher {
namespace {

struct RunOptions {
  std::string model, jobs, out;
  std::optional<std::string> config, plan, low_noise;
  bool resume = false;
  BackendOptions backend;
  PictureOptions pictures;
  TextEncoderOptions encoders;
  DeviceOptions devices;
  // The single-job form.
  std::string id = "image", cond, shift;
  std::optional<std::string> sampler, scheduler;
  std::optional<std::string> prompt, negative_prompt;
  std::optional<int64_t> width, height, frames, steps;
  std::optional<uint64_t> seed;
  std::optional<std::string> noise;
  std::optional<double> guidance, cfg;
};

// The job the flags describe, checked by the same rules as a job line.
Job job_from_flags(const RunOptions& o, const BuiltinModel* builtin) {
  Job job;
  job.id = o.id;
  job.prompt = o.prompt;
  job.negative_prompt = o.negative_prompt;
  job.cond = !o.cond.empty() || o.prompt ? o.cond : builtin ? builtin->cond_path() : "";
  job.width = o.width;
  job.height = o.height;
  job.frames = o.frames;
  job.noise = o.noise;
  job.seed = o.seed;
  if (!job.seed && !job.noise) job.seed = 0;
  if (!job.width && !job.noise && builtin) job.width = job.height = 256;
  job.steps = o.steps;
  job.sampler = o.sampler;
  job.scheduler = o.scheduler;
  if (!o.shift.empty()) job.shift = runtime::Shift::parse(o.shift);
  job.guidance = o.guidance;
  job.cfg = o.cfg;
  try {
    validate_job(job);
  } catch (const Error& e) {
    fail("job '{}' (from flags): {}", job.id, e.what());
  }
  return job;
}

// What every rank of the run is told, whatever the number of ranks.
DistributedRun make_run(const RunOptions& o, const std::string& model) {
  DistributedRun run;
  run.model = model;
  run.config = o.config;
  run.low_noise = o.low_noise;
  run.out = o.out;
  run.jobs_file = o.jobs;
  run.resume = o.resume;
  run.backend = o.backend;
  run.pictures = o.pictures;
  run.encoders = o.encoders;
  run.devices = o.devices;
  run.plan_path = o.plan;
  return run;
}

// Under mpirun: every rank runs run_distributed; rank 0 coordinates. A rank that cannot go on
// ends the whole run (MPI_Abort) after saying why, so no rank waits forever for it.
void run_under_mpirun(const RunOptions& o, const std::string& model,
                      const std::function<std::vector<JobLine>()>& read_lines) {
  DistributedOutcome outcome;
  {
    transport::MpiSession session;
    spdlog::set_pattern(fmt::format("[%H:%M:%S.%e] [rank {}] [%^%l%$] %v", session.rank()));
    auto channel = transport::make_mpi_channel(session);
    const std::vector<transport::RankInfo> ranks = transport::all_ranks(session);
    spdlog::info("rank {} of {} on {} (pid {})", session.rank(), session.size(), session.hostname(),
                 ranks[size_t(session.rank())].pid);
    if (session.rank() == 0) install_abort_report(ranks, session.hostname());
    DistributedRun run = make_run(o, model);
    run.on_in_flight = set_jobs_in_flight;
    if (run.backend.cuda_device < 0) run.backend.cuda_device = gpu_for_local_rank(session.local_rank());
    run.device_link = [&session] { return transport::make_nccl_link(session); };
    try {
      if (session.rank() == 0) run.lines = read_lines();
      outcome = run_distributed(*channel, run);
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      session.abort(2);
    }
    session.barrier();
  }
  if (outcome.failed)
    fail("{} of {} job(s) failed (details in {})", outcome.failed, outcome.run, ledger_path(o.out));
}

void run_jobs(RunOptions o) {
  std::unique_ptr<BuiltinModel> builtin;
  if (o.model.empty()) builtin = std::make_unique<BuiltinModel>();
  const std::string model = builtin ? builtin->model_path() : resolve_model_path(o.model, o.encoders.models_dir);
  if (builtin && !o.pictures.vae) {
    o.pictures.vae = builtin->vae_path();
    o.pictures.vae_name = "built-in flux-ae-tiny";
  }
  if (builtin && !o.encoders.given() && !builtin->t5_path().empty()) {
    o.encoders.t5 = builtin->t5_path();
    o.encoders.clip = builtin->clip_path();
  }

  // The jobs; under mpirun only rank 0 reads them (other nodes need not see the file).
  const auto read_lines = [&] {
    std::vector<JobLine> lines;
    if (!o.jobs.empty()) {
      lines = parse_job_file(o.jobs);
      if (lines.empty()) fail("{}: no jobs", o.jobs);
    } else {
      if (o.cond.empty() && !o.prompt && !builtin)
        fail("--prompt or --cond is needed (or --jobs FILE): the job's prompt, or its conditioning safetensors");
      lines.push_back({0, o.id, job_from_flags(o, builtin.get()), ""});
    }
    return lines;
  };
  if (transport::MpiSession::launched_by_mpirun()) {
    run_under_mpirun(o, model, read_lines);
    return;
  }
  if (o.devices.mode != "auto" || o.devices.stages != 0 || o.devices.team_size() > 1)
    fail("--mode, --stages, --sp and --cfg-parallel shape a run over several ranks: start it with mpirun -np N");
  if (o.plan && (!o.devices.inventory.empty() || !o.devices.allocation.empty() || !o.devices.reserve_vram.empty()))
    fail("--plan already says where every block goes: --devices, --allocation and --reserve-vram are for "
         "planning without one");
  // One process is a one-rank group: the executor of mpirun runs, on a local channel.
  DistributedRun run = make_run(o, model);
  run.lines = read_lines();
  auto channels = transport::make_local_channels(1);
  const DistributedOutcome outcome = run_distributed(*channels[0], run);
  if (outcome.failed)
    fail("{} of {} job(s) failed (details in {})", outcome.failed, outcome.run, ledger_path(o.out));
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Sample jobs (a jobs.jsonl or one job from flags) and write latents, previews and a ledger");
  static RunOptions o;
  cmd->add_option("model", o.model, "A .safetensors or .gguf checkpoint (omitted: the built-in tiny Flux)");
  cmd->add_option("--out", o.out, "Output folder")->required();
  cmd->add_option("--jobs", o.jobs, "A jobs.jsonl file (one JSON job per line)");
  cmd->add_option("--config", o.config, "A sidecar config JSON for the model (a job's own 'config' wins)");
  cmd->add_option("--low-noise", o.low_noise, kLowNoiseHelp);
  cmd->add_flag("--resume", o.resume, "Skip jobs the ledger records as done whose outputs exist");
  cmd->add_option("--plan", o.plan, "A plan JSON from `ditrun plan`: which blocks stay resident and which stream");
  add_device_options(*cmd, o.devices, false);
  add_sharing_options(*cmd, o.devices);
  add_backend_options(*cmd, o.backend);
  add_picture_options(*cmd, o.pictures, true);
  add_text_encoder_options(*cmd, o.encoders);
  auto* single = "Single job (without --jobs)";
  cmd->add_option("--id", o.id, "Job id, names the outputs")->group(single)->capture_default_str();
  cmd->add_option("--prompt", o.prompt, "The prompt (encoded by --t5/--clip, --text-encoder or --models)")->group(single);
  cmd->add_option("--negative-prompt", o.negative_prompt, "Wan's negative prompt (default: the release's)")->group(single);
  cmd->add_option("--cond", o.cond, "Conditioning safetensors (Flux: txt, y; Wan: context, context_neg)")->group(single);
  cmd->add_option("--width", o.width, "Width in pixels")->group(single);
  cmd->add_option("--height", o.height, "Height in pixels")->group(single);
  cmd->add_option("--frames", o.frames, "Frames (video models)")->group(single);
  cmd->add_option("--seed", o.seed, "Noise seed (default 0)")->group(single);
  cmd->add_option("--noise", o.noise, "Noise safetensors (tensor 'noise', [C,H,W] or [C,F,H,W])")->group(single);
  cmd->add_option("--steps", o.steps, "Sampler steps (default: the model's)")->group(single);
  cmd->add_option("--sampler", o.sampler,
                  "euler, unipc, dpm++ (Wan's official), dpmpp_2m, uni_pc, uni_pc_bh2 (ComfyUI's) (default: the "
                  "model's: unipc for Wan, euler for Flux)")
      ->group(single);
  cmd->add_option("--scheduler", o.scheduler, "model (default), or ComfyUI's simple, normal, beta, sgm_uniform")
      ->group(single);
  cmd->add_option("--shift", o.shift, "none, flux-dynamic, qwen-dynamic or a number (default: the model's)")->group(single);
  cmd->add_option("--guidance", o.guidance, "Embedded guidance (Flux dev)")->group(single);
  cmd->add_option("--cfg", o.cfg, "Classifier-free guidance scale, 1 = off (Wan)")->group(single);
  cmd->callback([] {
    if (!o.jobs.empty() && (!o.cond.empty() || o.prompt || o.negative_prompt || o.width || o.height || o.frames || o.seed || o.noise || o.steps ||
                            !o.shift.empty() || o.guidance || o.cfg || o.sampler || o.scheduler))
      fail("--jobs and single-job flags (--prompt, --cond, --width, ...) do not mix: put those values in the job lines");
    run_jobs(o);
  });
}

}  // namespace ditrun::launcher
