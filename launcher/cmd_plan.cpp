// `ditrun plan MODEL|PRESET [--devices SPEC] [--allocation A] ...`: where every block of a
// model would live for one job on the given devices, and what the cost model predicts, without
// loading any weights. Prints a table, or the plan JSON (--json); --out writes the JSON file
// `ditrun run` can follow. A plan that does not fit is an error naming the shortfall (exit 2).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

#include "launcher/commands.h"
#include "launcher/device_inventory.h"
#include "launcher/picture_output.h"
#include "launcher/planning.h"
#include "launcher/text_encoders.h"
#include "runtime/core/units.h"
#include "runtime/core/atomic_file.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

struct PlanOptions {
  PlanRequest request;
  DeviceOptions devices;
  PictureOptions pictures;  // --vae: rank 0's GPU also decodes
  TextEncoderOptions encoders;  // --t5, --clip, ...: where the planner puts them
  int cpu_ranks = 1;
  std::string out;
  bool json = false;
};

std::string job_line(const JobPlan& p) {
  const models::JobGeometry& j = p.job;
  std::string size = fmt::format("{}x{}", j.width, j.height);
  if (p.config.family == arch::Family::Wan) size += fmt::format(", {} frames", j.frames);
  return fmt::format("{}: {} image + {} text tokens, batch {}{}, {} steps", size, j.tokens.image, j.tokens.text,
                     j.batch, j.batch > 1 ? " (cfg)" : "", j.steps);
}

std::string block_range(const partition::RankPlan& r) {
  const size_t streamed =
      std::count_if(r.blocks.begin(), r.blocks.end(), [](const auto& b) { return b.home == partition::Home::streamed; });
  std::string range = r.blocks.size() == 1 ? r.blocks.front().name
                                           : fmt::format("{}..{}", r.blocks.front().name, r.blocks.back().name);
  return fmt::format("{} ({}{})", range, r.blocks.size(), streamed ? fmt::format(", {} streamed", streamed) : "");
}

void print_table(const JobPlan& p, const PlanOptions& o, const std::vector<partition::EncoderPlacement>& encoders) {
  const partition::ModelCost& cost = p.planned.cost;
  const partition::Plan& plan = p.planned.plan;
  fmt::print("model    {}: {} of weights in {} units\n", p.model, format_bytes(cost.weight_bytes()), cost.blocks.size());
  fmt::print("job      {}\n", job_line(p));
  fmt::print("memory   activations {} per rank, largest unit {}\n", format_bytes(cost.step_activation_bytes),
             format_bytes(cost.largest_block_bytes()));
  if (o.request.devices.vae_bytes > 0)
    fmt::print("vae      {}: {} kept on rank 0's GPU (the budget below is what is left)\n", *o.pictures.vae,
               format_bytes(o.request.devices.vae_bytes));
  fmt::print("budgets  {}\n", p.planned.budgets.describe());
  fmt::print("plan     {} ({} objective, {} rank(s), {} group(s), {} micro-batch(es)){}\n\n", partition::to_string(plan.mode),
             partition::to_string(plan.objective), plan.ranks.size(), plan.group_count(), plan.micro_batches,
             plan.exact ? "" : " [not proven optimal]");
  if (const std::string experts = describe_experts(p.config, plan); !experts.empty())
    fmt::print("experts  {}\n\n", experts);

  std::vector<std::array<std::string, 10>> rows;
  rows.push_back({"rank", "device", "blocks", "resident", "streamed", "compute", "transfer", "exposed", "boundary",
                  "peak / budget"});
  for (const partition::RankPlan& r : plan.ranks) {
    const auto& t = r.predicted;
    rows.push_back({std::to_string(r.rank), r.device, block_range(r), format_bytes(r.resident_bytes()),
                    format_bytes(r.streamed_bytes()), format_seconds(t.compute_seconds), format_seconds(t.transfer_seconds),
                    format_seconds(t.exposed_transfer_seconds), format_seconds(t.boundary_seconds),
                    fmt::format("{} / {}", format_bytes(r.peak_bytes), format_bytes(r.budget_bytes))});
  }
  std::array<size_t, 10> width{};
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) line += fmt::format("{:<{}}  ", row[c], width[c]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  }

  fmt::print("\nhost     pinned {} of {}\n", format_bytes(plan.host_pinned_bytes), format_bytes(plan.host_budget_bytes));
  for (const partition::EncoderPlacement& e : encoders)
    fmt::print("encoder  {}: {} on {}{}, {} per job; {}\n", e.encoder, partition::to_string(e.where), e.device,
               e.device_bytes ? fmt::format(" ({})", format_bytes(e.device_bytes)) : "", format_seconds(e.seconds_per_job),
               e.why);
  std::string step = fmt::format("step     {}", format_seconds(plan.predicted.step_seconds));
  if (plan.group_count() > 1)
    step += fmt::format(", {} amortized over {} groups", format_seconds(plan.predicted.throughput_step_seconds),
                        plan.group_count());
  else if (plan.predicted.throughput_step_seconds < plan.predicted.step_seconds * (1 - 1e-9))
    step += fmt::format(", {} amortized with a job in flight per stage",
                        format_seconds(plan.predicted.throughput_step_seconds));
  if (plan.predicted.job_seconds)
    step += fmt::format("; job {} ({} steps)", format_job_seconds(*plan.predicted.job_seconds), plan.steps);
  if (plan.predicted.seconds_per_job && plan.predicted.seconds_per_job < plan.predicted.job_seconds)
    step += fmt::format(", {} per job amortized", format_job_seconds(*plan.predicted.seconds_per_job));
  fmt::print("{}\n", step);
}

void write_json_file(const std::string& path, const std::string& text) {
  AtomicFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

void run_plan(PlanOptions& o) {
  const int team = o.devices.team_size();
  // CPU ranks (--cpu-ranks N) or the inventory's GPUs form the teams.
  if (o.cpu_ranks > 1 && o.cpu_ranks % team != 0)
    fail("--cpu-ranks {} do not form teams of {} ranks (--sp x --cfg-parallel)", o.cpu_ranks, team);
  o.request.devices = o.devices.choice();
  o.request.devices.cpu_ranks = o.cpu_ranks > 1 ? o.cpu_ranks / team : 1;
  o.request.devices.cpu_backend = o.cpu_ranks > 1;
  o.request.devices.sequence_parallel = o.devices.sequence_parallel;
  o.request.devices.cfg_parallel = o.devices.cfg_parallel ? 2 : 1;
  o.request.devices.gpus_form_teams = o.cpu_ranks == 1;
  // --vae: the decode's memory on rank 0's GPU (a plan for GPUs; the CPU runs it unbudgeted).
  if (o.pictures.vae && o.cpu_ranks == 1 && !device_inventory(o.request.devices.inventory).gpus().empty())
    o.request.devices.vae_bytes =
        RunVae(o.pictures, BackendOptions{}).device_bytes(job_of(o.request, nullptr), o.request.devices.gpu_activation_bytes);
  // The latency objective weighs teams against whole steps when the layout is left to it.
  const bool cpu = o.cpu_ranks > 1;
  const int count = cpu ? o.cpu_ranks : int(device_inventory(o.request.devices.inventory).gpus().size());
  JobPlan p;
  std::unique_ptr<RunEncoders> encoders;
  std::vector<partition::EncoderPlacement> placements;
  std::string encoder_choice;
  if (team == 1 && count > 1 && o.request.devices.objective == partition::Objective::latency &&
      o.devices.mode == "auto" && o.devices.stages == 0 && o.devices.allocation.empty()) {
    arch::ModelConfig config;
    const models::JobGeometry job = job_of(o.request, &config);
    const SharingChoice choice = fastest_sharing(count, job, config, [&](const DeviceOptions& sharing) {
      PlanRequest request = o.request;
      request.devices.sequence_parallel = sharing.sequence_parallel;
      request.devices.cfg_parallel = sharing.cfg_parallel ? 2 : 1;
      request.devices.cpu_ranks = cpu ? count / sharing.team_size() : 1;
      JobPlan planned = plan_job(request);
      p.model = planned.model;
      p.config = planned.config;
      p.job = planned.job;
      return planned.planned;
    });
    p.planned = choice.planned;
    p.planned.plan = choice.plan;
    if (!o.json) fmt::print("layout   {}\n\n", choice.why);
  } else if (o.encoders.given() && team == 1) {
    // The DiT and the encoders together: room kept for the encoders on rank 0's GPU when it
    // shortens the job (plan_with_encoders).
    arch::ModelConfig config;
    job_of(o.request, &config);
    encoders = std::make_unique<RunEncoders>(o.encoders, config, "", false);
    PlanWithEncoders with = plan_with_encoders(*encoders, [&](uint64_t bytes) {
      PlanRequest request = o.request;
      request.devices.encoder_bytes = bytes;
      p = plan_job(request);
      return p.planned;
    });
    p.planned = std::move(with.planned);
    placements = std::move(with.placements);
    encoder_choice = with.reserved_bytes ? fmt::format("{} kept on rank 0's GPU for the text encoders; {}",
                                                       format_bytes(with.reserved_bytes), with.why)
                                         : with.why;
  } else {
    p = plan_job(o.request);
  }
  if (team > 1) {
    const double unshared = p.planned.plan.predicted.step_seconds;
    p.planned.plan = share_planned_steps(p.planned, o.devices, p.config);
    if (!o.json)
      fmt::print("teams    {} ranks per stage (sequence parallel {}, CFG parallel {}): step {} against {} unshared "
                 "({:.2f}x)\n\n",
                 team, o.devices.sequence_parallel, o.devices.cfg_parallel ? 2 : 1,
                 format_seconds(p.planned.plan.predicted.step_seconds), format_seconds(unshared),
                 unshared / p.planned.plan.predicted.step_seconds);
  }
  const std::string json = partition::to_json(p.planned.plan).dump(2) + "\n";
  if (!o.out.empty()) {
    write_json_file(o.out, json);
    spdlog::info("plan written to {}", o.out);
  }
  // Shared steps: the text encoders take what the DiT's plan leaves on rank 0's GPU.
  if (o.encoders.given() && !encoders)
    placements = RunEncoders(o.encoders, p.config, "", false).placements_for(p.planned.plan, p.planned.inventory);
  if (o.json) {
    fmt::print("{}", json);
  } else {
    print_table(p, o, placements);
    if (!encoder_choice.empty()) fmt::print("encoders {}\n", encoder_choice);
  }
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plan", "Plan where a model's blocks live on the devices for one job, and predict its speed");
  static PlanOptions o;
  cmd->add_option("model", o.request.model, "A .safetensors or .gguf checkpoint, or a preset name (flux-dev, wan2.1-t2v-14b, ...)")
      ->required();
  add_device_options(*cmd, o.devices, true);
  add_sharing_options(*cmd, o.devices);
  cmd->add_option("--vae", o.pictures.vae, "The VAE that decodes on rank 0's GPU: its memory is kept out of that GPU's budget");
  cmd->add_option("--vae-config", o.pictures.vae_config, "A sidecar config JSON for the VAE");
  add_text_encoder_options(*cmd, o.encoders);
  cmd->add_option("--cpu-ranks", o.cpu_ranks,
                  "Plan for this many CPU-backend ranks (mpirun -np N on CPUs), each a device cpu:N")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--weights", o.request.weights, "Presets only: the weight encoding (" + quant::conversion_targets_help() + "); default bf16");
  cmd->add_option("--config", o.request.config, "A sidecar config JSON for a checkpoint");
  cmd->add_option("--low-noise", o.request.low_noise, kLowNoiseHelp);
  cmd->add_option("--width", o.request.job.width, "Width in pixels (default: Flux 1024, Wan 832)");
  cmd->add_option("--height", o.request.job.height, "Height in pixels (default: Flux 1024, Wan 480)");
  cmd->add_option("--frames", o.request.job.frames, "Frames, video models (default 81)");
  cmd->add_option("--text-tokens", o.request.job.text_tokens, "Prompt tokens (default: Flux dev 512, schnell 256; Wan text_len; SD3.5 154; Qwen-Image 256)");
  cmd->add_option("--steps", o.request.job.steps, "Sampler steps (default: the model's)");
  cmd->add_option("--cfg", o.request.job.cfg, "Classifier-free guidance scale, 1 = off (default: the model's; Wan cfg doubles the batch)");
  cmd->add_flag("--json", o.json, "Print the plan JSON instead of the table");
  cmd->add_option("--out", o.out, "Also write the plan JSON to this file");
  cmd->callback([] { run_plan(o); });
}

}  // namespace ditrun::launcher
