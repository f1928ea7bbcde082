#include "launcher/distributed_run.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "launcher/device_inventory.h"
#include "launcher/job_feed.h"
#include "launcher/models_dir.h"
#include "launcher/ledger.h"
#include "models/pipeline/model_cost.h"
#include "models/pipeline/model_files.h"
#include "runtime/core/error.h"
#include "runtime/core/units.h"
#include "runtime/run/executor.h"

namespace ditrun::launcher {
namespace {

// --resume: lines whose job the ledger records as done (outputs present) are skipped.
std::vector<JobLine> pending_lines(const DistributedRun& o, size_t& skipped) {
  const std::set<std::string> done = o.resume ? completed_jobs(o.out) : std::set<std::string>{};
  std::vector<JobLine> todo;
  for (const JobLine& l : o.lines) {
    if (l.ok() && done.count(l.job->id))
      ++skipped;
    else
      todo.push_back(l);
  }
  if (skipped) spdlog::info("--resume: {} job(s) already done in {}", skipped, o.out);
  return todo;
}

bool same_config(const std::optional<std::string>& a, const std::optional<std::string>& b) {
  if (!a || !b) return !a && !b;
  std::error_code ec;
  return *a == *b || std::filesystem::equivalent(*a, *b, ec);
}

// The config a line's job runs with: its own, or the run's.
std::optional<std::string> config_of(const JobLine& l, const std::optional<std::string>& run_config) {
  return l.ok() && l.job->config ? l.job->config : run_config;
}

// Rank 0's plan for `ranks` ranks: read from --plan, or made here for the largest job. A plan
// that cannot be made (the model does not fit) is its error, which fails the jobs; a --plan
// file that cannot be followed fails the run (`fatal`).
struct PlanOrError {
  PlanOrError() = default;
  PlanOrError(std::optional<partition::Plan> plan, std::string error, bool fatal,
              std::optional<partition::DeviceInventory> inventory = std::nullopt)
      : plan(std::move(plan)), error(std::move(error)), fatal(fatal), inventory(std::move(inventory)) {}
  std::optional<partition::Plan> plan;
  std::string error;
  bool fatal = false;
  std::optional<partition::DeviceInventory> inventory;  // what the plan was made for (none: read from --plan)
};
// `encoders` (may be null): a plan made here weighs keeping room for them (plan_with_encoders).
PlanOrError make_plan(const DistributedRun& o, int ranks, const models::OpenedModel& source,
                      const std::vector<JobLine>& lines, RunVae* vae, const RunEncoders* encoders) {
  const runtime::Model& network = *source.network;
  const int team = o.devices.team_size();
  if (o.plan_path) {
    try {
      if (team > 1)
        fail("--sp and --cfg-parallel shape a plan that {} already shapes (its sequence_parallel and cfg_parallel)",
             *o.plan_path);
      return {plan_for_ranks(read_plan_file(*o.plan_path), ranks), "", false};
    } catch (const Error& e) {
      return {std::nullopt, e.what(), true};
    }
  }
  if (o.devices.ring > 0 && o.devices.sequence_parallel == 1)
    return {std::nullopt, fmt::format("--ring {} needs --sp N (ring attention among the ranks of a job's tokens)",
                                      o.devices.ring),
            true};
  if (ranks % team != 0)
    return {std::nullopt,
            fmt::format("--sp {}{} makes teams of {} ranks, which {} ranks cannot form (start a multiple of {})",
                        o.devices.sequence_parallel, o.devices.cfg_parallel ? " --cfg-parallel" : "", team, ranks, team),
            true};
  try {
    // The planner places blocks on each stage's positions; every position then becomes a team
    // (whose ranks each need the activations of their share).
    DeviceChoice choice = run_device_choice(o.devices, o.backend, ranks / team);
    choice.sequence_parallel = o.devices.sequence_parallel;
    choice.cfg_parallel = o.devices.cfg_parallel ? 2 : 1;
    // A queue of jobs over several groups: what matters is jobs per hour.
    if (o.devices.objective.empty() && ranks > 1) choice.objective = partition::Objective::throughput;
    const models::JobGeometry geometry =
        models::job_geometry(source.config(), o.plan_for ? *o.plan_for : largest_job_settings(lines, source.config()));
    // Rank 0's GPU decodes the pictures too.
    if (vae && choice.gpu_ranks > 0) choice.vae_bytes = vae->device_bytes(geometry, choice.gpu_activation_bytes);
    if (geometry.tokens.image < o.devices.sequence_parallel)
      return {std::nullopt,
              fmt::format("--sp {} splits a job's image tokens over {} ranks, but the largest job ({}x{}) has {}",
                          o.devices.sequence_parallel, o.devices.sequence_parallel, geometry.width, geometry.height,
                          geometry.tokens.image),
              true};
    // --objective latency over several ranks with the layout left to the planner: teams are
    // weighed against whole steps (the plan then carries them to every rank).
    if (team == 1 && ranks > 1 && o.devices.objective == "latency" && o.devices.mode == "auto" &&
        o.devices.stages == 0 && o.devices.allocation.empty()) {
      const SharingChoice chosen = fastest_sharing(ranks, geometry, source.config(), [&](const DeviceOptions& sharing) {
        DeviceChoice positions = run_device_choice(o.devices, o.backend, ranks / sharing.team_size());
        positions.sequence_parallel = sharing.sequence_parallel;
        positions.cfg_parallel = sharing.cfg_parallel ? 2 : 1;
        positions.vae_bytes = choice.vae_bytes;
        return plan_model(source.config(), network, source.stored_weights(), geometry, positions);
      });
      spdlog::info("layout: {}", chosen.why);
      return {chosen.plan, "", false, chosen.planned.inventory};
    }
    const auto plan_for = [&](uint64_t encoder_bytes) {
      DeviceChoice c = choice;
      c.encoder_bytes = encoder_bytes;
      return plan_model(source.config(), network, source.stored_weights(), geometry, c);
    };
    ModelPlan planned;
    if (encoders && team == 1) {
      PlanWithEncoders with = plan_with_encoders(*encoders, plan_for);
      if (with.reserved_bytes) spdlog::info("text encoders: {} kept for them on rank 0's GPU ({})",
                                            format_bytes(with.reserved_bytes), with.why);
      planned = std::move(with.planned);
    } else {
      planned = plan_for(0);
    }
    spdlog::info("planned for {}x{}{} ({} tokens): {}", geometry.width, geometry.height,
                 geometry.frames > 1 ? fmt::format("x{}", geometry.frames) : "",
                 geometry.tokens.image + geometry.tokens.text, planned.budgets.describe());
    if (team == 1) return {planned.plan, "", false, planned.inventory};
    return {share_planned_steps(planned, o.devices, source.config()), "", false, planned.inventory};
  } catch (const Error& e) {
    return {std::nullopt, e.what(), false};
  }
}

// Every job of `lines` recorded as failed with `error` (the plan that could not be made).
size_t fail_all(const DistributedRun& o, const std::vector<JobLine>& lines, const std::string& error) {
  for (const JobLine& l : lines) {
    LedgerEntry entry;
    entry.id = l.ok() ? l.job->id : l.id;
    entry.error = !l.ok() ? l.error
                          : fmt::format("{}job '{}': {}",
                                        o.jobs_file.empty() ? "" : fmt::format("{}:{}: ", o.jobs_file, l.job->line),
                                        entry.id, error);
    append_ledger(o.out, entry);
    spdlog::error("{}", entry.error);
  }
  return lines.size();
}

// One model (its config), every rank: the executor over `lines` (rank 0's) or o.source.
DistributedOutcome run_model(transport::Channel& channel, const DistributedRun& o,
                             const std::optional<std::string>& config, const std::vector<JobLine>& lines) {
  const int rank = channel.rank();
  // Every rank opens the model (mapped, nothing read yet); rank 0 also plans with it.
  const models::OpenedModel model = models::open_model_files({o.model, o.low_noise, config});
  const arch::ModelConfig& model_config = model.config();
  const auto denoiser = models::make_denoiser(model_config);
  spdlog::info("model {}: {} blocks, config {}", model.describe(), model.network->blocks().size(),
               model.source.config_source);

  // Rank 0 decodes: a VAE that cannot decode this model's latents fails every job, as a plan
  // that cannot be made does; on a GPU the plan keeps the VAE's memory out of rank 0's budget.
  PlanOrError planned;
  std::unique_ptr<RunVae> decoder;
  PictureOptions pictures = o.pictures;
  if (rank == 0 && !pictures.vae && o.encoders.models_dir)
    pictures.vae = find_vae_in_models_dir(*o.encoders.models_dir, model_config);
  if (rank == 0 && pictures.vae) {
    try {
      decoder = std::make_unique<RunVae>(pictures, o.backend, model_config);
    } catch (const Error& e) {
      planned = {std::nullopt, e.what(), false};
    }
  }
  // Rank 0 encodes prompts. Encoders that cannot serve this model (or be placed) fail the jobs
  // with prompts, each naming the problem; jobs with cond files still run.
  std::unique_ptr<RunEncoders> encoders;
  std::string encoders_error;
  const auto encoders_failed = [&](const Error& e) {
    encoders.reset();
    encoders_error = e.what();
    spdlog::error("text encoders: {}", encoders_error);
  };
  if (rank == 0 && o.encoders.given() && planned.error.empty()) {
    try {
      encoders = std::make_unique<RunEncoders>(o.encoders, model_config, (std::filesystem::path(o.out) / "prompt-cache").string());
    } catch (const Error& e) {
      encoders_failed(e);
    }
  }
  if (rank == 0 && planned.error.empty())
    planned = make_plan(o, channel.size(), model, lines, decoder.get(), encoders.get());
  if (encoders && planned.plan) {
    try {
      encoders->place(*planned.plan, planned.inventory ? *planned.inventory : device_inventory(o.devices.inventory),
                      o.backend, planned.plan->encoder_bytes);
    } catch (const Error& e) {
      encoders_failed(e);
    }
  }
  if (rank == 0 && !planned.plan && !planned.fatal && !o.source && channel.size() == 1) {
    const size_t failed = fail_all(o, lines, planned.error);
    return {failed, failed, 0};
  }

  // --resume with a VAE: jobs whose latent is there but whose picture is not are decoded,
  // not rendered again.
  std::vector<JobLine> to_render;
  size_t finished = 0, finish_failed = 0;
  for (const JobLine& l : lines) {
    std::optional<LedgerEntry> entry;
    if (o.resume && decoder && l.ok()) {
      try {
        entry = finish_from_latent(o.out, *l.job, model_config, *decoder, o.pictures.preview);
      } catch (const Error& e) {
        LedgerEntry failed;
        failed.id = l.job->id;
        failed.error = fmt::format("{}job '{}': {}", o.jobs_file.empty() ? "" : fmt::format("{}:{}: ", o.jobs_file, l.job->line),
                                   l.job->id, e.what());
        spdlog::error("{}", failed.error);
        append_ledger(o.out, failed);
        ++finish_failed;
        continue;
      }
    }
    if (!entry) {
      to_render.push_back(l);
      continue;
    }
    spdlog::info("--resume: job '{}' finished from its latent: {}", entry->id, fmt::join(entry->outputs, ", "));
    append_ledger(o.out, *entry);
    ++finished;
  }
  JobListSource listed(to_render);
  JobFeed feed(o.source ? *o.source : listed, o.jobs_file, o.out, model_config, *denoiser, config, decoder.get(),
               o.pictures.preview, encoders.get(), encoders_error);
  runtime::ExecutorSetup setup;
  setup.network = model.network.get();
  setup.find_weight = model.find_weight();
  setup.denoising = denoiser.get();
  setup.make_plan = [&] {
    if (!planned.plan) {
      if (!planned.fatal && !o.source) fail_all(o, lines, planned.error);
      fail("{}", planned.error);
    }
    return *planned.plan;
  };
  setup.make_backend = [&](const partition::RankPlan& mine) {
    BackendOptions options = o.backend;
    // A plan made here took --device-memory as the budget it now carries.
    if (!o.plan_path) options.device_memory.clear();
    adopt_plan_device(mine, options, channel.size() == 1,
                      o.plan_path ? *o.plan_path : fmt::format("rank {}'s plan", rank));
    return make_backend(options);
  };
  setup.device_link = o.device_link;
  if (rank == 0) {
    setup.source = &feed;
    setup.sink = &feed;
    setup.on_ready = o.on_ready;
    setup.on_in_flight = o.on_in_flight;
  }
  const runtime::ExecutorOutcome done = runtime::execute(channel, setup);
  if (encoders && (encoders->cache().encodings() || encoders->cache().hits()))
    spdlog::info("prompts: {} encoded, {} from the prompt cache", encoders->cache().encodings(), encoders->cache().hits());
  return {done.run + finished + finish_failed, done.failed + finish_failed, 0};
}

}  // namespace

partition::Plan plan_for_ranks(partition::Plan plan, int ranks) {
  if (ranks != 1 || plan.ranks.size() == 1) return plan;
  if (plan.experts && plan.experts->strategy == partition::ExpertStrategy::phases)
    fail("the plan runs the two experts on different ranks ({} in all): run it under mpirun with -np {}",
         plan.ranks.size(), plan.ranks.size());
  const int stages = int(std::count_if(plan.ranks.begin(), plan.ranks.end(), [](const auto& r) { return r.group == 0; }));
  if (stages > 1)
    fail("the plan is a {} of {} stages per job ({} ranks in all): run it under mpirun with -np {}; one process runs "
         "only plans whose rank 0 holds the whole model",
         partition::to_string(plan.mode), stages, plan.ranks.size(), plan.ranks.size());
  spdlog::warn("the plan has {} replica ranks; this one process runs rank 0's share (mpirun -np {} runs them all)",
               plan.ranks.size(), plan.ranks.size());
  plan.host_budget_bytes = plan.host_share_bytes();  // rank 0's share of the host, as under mpirun
  plan.ranks.resize(1);
  return plan;
}

DistributedOutcome run_distributed(transport::Channel& channel, const DistributedRun& o) {
  if (channel.rank() != 0) return run_model(channel, o, o.config, {});
  std::filesystem::create_directories(o.out);
  DistributedOutcome total;
  const std::vector<JobLine> todo = o.source ? std::vector<JobLine>{} : pending_lines(o, total.skipped);
  if (channel.size() > 1 || o.source) {
    const DistributedOutcome r = run_model(channel, o, o.config, todo);
    return {r.run, r.failed, total.skipped};
  }
  // One process: a model per run of consecutive jobs with the same config.
  for (size_t begin = 0; begin < todo.size();) {
    const std::optional<std::string> config = config_of(todo[begin], o.config);
    size_t end = begin + 1;
    while (end < todo.size() && same_config(config_of(todo[end], o.config), config)) ++end;
    const DistributedOutcome r =
        run_model(channel, o, config, std::vector<JobLine>(todo.begin() + long(begin), todo.begin() + long(end)));
    total.run += r.run;
    total.failed += r.failed;
    begin = end;
  }
  return total;
}

}  // namespace ditrun::launcher
