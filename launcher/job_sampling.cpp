#include "launcher/job_sampling.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "media/png.h"
#include "models/formats/checkpoint.h"
#include "models/pipeline/latent_preview.h"
#include "models/pipeline/noise_file.h"
#include "models/pipeline/tensor_files.h"
#include "runtime/core/error.h"
#include "runtime/sampling/noise.h"
#include "runtime/sampling/comfy_schedules.h"
#include "runtime/sampling/sampler.h"
#include "runtime/sampling/wan_solvers.h"

namespace ditrun::launcher {

ImageUse image_use(const arch::ModelConfig& config) {
  if (config.family != arch::Family::Wan) return ImageUse::picture;
  const arch::WanParams& wan = arch::wan_params(config);
  if (wan.in_dim > wan.out_dim) return ImageUse::conditioning;
  if (wan.model_type == "ti2v") return ImageUse::first_frame;
  return ImageUse::picture;
}

namespace {

// A job's `image` as a latent-space safetensors (image-to-video, until the VAE encodes
// pictures for it): its tensor `name` [channels, F, H, W] as the official code builds it.
HostTensor read_image_latent(const Job& job, const std::string& name, int64_t channels, const std::string& what) {
  const std::string layout = fmt::format("{} [{}, F, H, W] ({})", name, channels, what);
  if (!job.image->ends_with(".safetensors"))
    fail("image: {}: an image-to-video job takes a PNG or a safetensors holding {}", *job.image, layout);
  if (job.denoise) fail("denoise: image-to-video runs the whole schedule from noise, conditioned on the image");
  auto tensors = models::read_host_tensors(*job.image);
  const auto t = tensors.find(name);
  if (t == tensors.end()) fail("image: {} has no tensor '{}' ({})", *job.image, name, layout);
  if (t->second.shape.size() != 4 || t->second.shape[0] != channels)
    fail("image: {}: '{}' is {}, the model needs {}", *job.image, name, shape_string(t->second.shape), layout);
  return std::move(t->second);
}

// Wan's image-to-video conditioning from a picture, as WanI2V.generate builds it: the VAE
// latent of a `frames`-frame video whose first frame is the picture and the rest zero, after
// 4 mask channels that are 1 on the first latent frame (the picture's 4 expanded pixel frames)
// and 0 after.
HostTensor conditioning_from_picture(const Job& job, RunVae& vae, int64_t frames) {
  const HostTensor latent = vae.encode_image(*job.image, job.width, job.height, frames);
  const int64_t c = latent.shape[0], f = latent.shape[1], plane = latent.shape[2] * latent.shape[3];
  HostTensor y({4 + c, f, latent.shape[2], latent.shape[3]});
  for (int64_t m = 0; m < 4; ++m) std::fill_n(y.data.begin() + m * f * plane, plane, 1.0f);
  std::copy(latent.data.begin(), latent.data.end(), y.data.begin() + 4 * f * plane);
  return y;
}

// What a job's `image` becomes for an image-to-video model: Wan I2V's conditioning `y` beside
// the latent (required), or TI2V's first latent frame held fixed (optional: without one TI2V
// renders text-to-video). A PNG is encoded by the run's VAE; a safetensors holds the latent
// tensors themselves. Nothing for other models.
void add_image_conditioning(const Job& job, const arch::ModelConfig& config, RunVae* vae, runtime::Conditioning& cond) {
  const ImageUse use = image_use(config);
  if (use == ImageUse::picture || (use == ImageUse::first_frame && !job.image)) return;
  const arch::WanParams& wan = arch::wan_params(config);
  const int64_t channels = wan.in_dim - wan.out_dim;
  const std::string what = fmt::format("{} mask channels, then the image latent", channels - wan.out_dim);
  if (!job.image)
    fail("image: {} is an image-to-video model: the job needs `image`, a PNG (with --vae) or a safetensors holding y "
         "[{}, F, H, W] ({})",
         config.variant, channels, what);
  if (job.image->ends_with(".png")) {
    if (!vae) fail("image: {} needs a VAE to encode it (run with --vae FILE)", *job.image);
    if (job.denoise) fail("denoise: image-to-video runs the whole schedule from noise, conditioned on the image");
    if (use == ImageUse::conditioning) {
      if (!job.frames) fail("frames: image-to-video from {} needs the video's frame count", *job.image);
      cond.tensors["y"] = conditioning_from_picture(job, *vae, *job.frames);
    } else {
      cond.tensors[std::string(runtime::kFixedFrames)] = vae->encode_image(*job.image, job.width, job.height);
    }
  } else if (use == ImageUse::conditioning) {
    cond.tensors["y"] = read_image_latent(job, "y", channels, what);
  } else {
    cond.tensors[std::string(runtime::kFixedFrames)] =
        read_image_latent(job, "image_latent", wan.out_dim, "the image's latent: the first frame");
  }
}

// prepare_job; without `encode_prompts` a job's prompt is left for later (check_job).
runtime::SamplingJob prepare(const Job& job, const arch::ModelConfig& config, const models::Denoiser& denoiser,
                             RunVae* vae, RunEncoders* encoders, bool encode_prompts) {
  const arch::SamplingDefaults& defaults = config.sampling;
  runtime::SamplingJob p;
  p.id = job.id;
  p.line = job.line;
  p.seed = job.seed;
  p.guidance = {job.guidance.value_or(defaults.guidance), job.cfg.value_or(defaults.cfg)};
  if (config.experts == 2) {
    // Each expert's guidance: its own field, else `cfg` for both, else the release's pair.
    p.guidance.cfg = job.cfg_high.value_or(job.cfg.value_or(defaults.cfg));
    p.experts = runtime::ExpertSwitch{job.boundary.value_or(defaults.boundary),
                                      job.cfg_low.value_or(job.cfg.value_or(defaults.cfg_low))};
  } else {
    for (const auto& [given, key] : {std::pair{job.cfg_high.has_value(), "cfg_high"}, {job.cfg_low.has_value(), "cfg_low"},
                                     {job.boundary.has_value(), "boundary"}})
      if (given)
        fail("{}: {} has one expert; the field is for models of two (Wan 2.2 A14B, run with --low-noise FILE)", key,
             config.variant);
  }
  if (job.prompt && !encode_prompts) {
    // Encoded when the job runs (its errors are the job's then).
  } else if (job.prompt) {
    if (!encoders) fail("{}", missing_encoders_message(config));
    // A guided Wan or SD3.5 job without a negative prompt gets its release's default one
    // (SD3.5's is the empty prompt).
    std::optional<std::string> negative = job.negative_prompt;
    if (models::text::takes_negative_prompt(config)) {
      if (p.guidance.cfg == 1 && (!p.experts || p.experts->cfg_low == 1)) negative.reset();
      else if (!negative) negative = models::text::default_negative_prompt(config);
    }
    p.cond = {encoders->conditioning(job.id, *job.prompt, negative), "prompt"};
    p.prompt = job.prompt;
    p.negative_prompt = negative;
  } else {
    p.cond = {models::read_host_tensors(job.cond), job.cond};
  }
  const ImageUse use = image_use(config);
  add_image_conditioning(job, config, vae, p.cond);
  if (!job.prompt || encode_prompts) {
    denoiser.check_conditioning(p.cond, p.guidance);
    if (p.experts) denoiser.check_conditioning(p.cond, {p.guidance.guidance, p.experts->cfg_low});
  }
  HostTensor image_latent;
  if (job.image && use == ImageUse::picture) {
    if (!vae) fail("image: {} needs a VAE to encode it (run with --vae FILE)", *job.image);
    if (job.frames.value_or(1) != 1)
      fail("image: {} starts a {}-frame video: image-to-video needs a Wan image-to-video model (I2V or TI2V)",
           *job.image, *job.frames);
    image_latent = vae->encode_image(*job.image, job.width, job.height);
    denoiser.check_latent(image_latent.shape);
  }
  if (job.noise) {
    p.x = models::load_noise_file(*job.noise);
    denoiser.check_latent(p.x.shape);
    if (job.width) {
      const Shape want = denoiser.latent_shape(*job.width, *job.height, job.frames.value_or(1));
      if (want != p.x.shape)
        fail("noise {} has shape {}, but {}x{} pixels need {}", *job.noise, shape_string(p.x.shape), *job.width,
             *job.height, shape_string(want));
    }
  } else if (use == ImageUse::conditioning && !job.width) {
    // Image-to-video: the conditioning's grid is the latent's.
    const Shape& y = p.cond.tensors.at("y").shape;
    p.x = runtime::seeded_noise(*job.seed, {arch::wan_params(config).out_dim, y[1], y[2], y[3]});
  } else if (job.image && use == ImageUse::picture) {
    p.x = runtime::seeded_noise(*job.seed, image_latent.shape);
  } else if (use == ImageUse::first_frame && job.image && !job.width) {
    // TI2V: the first frame's grid, the video's frames.
    if (!job.frames) fail("frames: {} image-to-video needs the video's frame count (or a noise file)", config.variant);
    const Shape& first = p.cond.tensors.at(std::string(runtime::kFixedFrames)).shape;
    p.x = runtime::seeded_noise(*job.seed, {first[0], 1 + (*job.frames - 1) / 4, first[2], first[3]});
  } else {
    p.x = runtime::seeded_noise(*job.seed, denoiser.latent_shape(*job.width, *job.height, job.frames.value_or(1)));
  }
  if (use == ImageUse::conditioning) {
    const Shape& y = p.cond.tensors.at("y").shape;
    if (!std::equal(y.begin() + 1, y.end(), p.x.shape.begin() + 1, p.x.shape.end()))
      fail("image: {}: 'y' is {}, but the job's latent is {} (the same frames, height and width)", *job.image,
           shape_string(y), shape_string(p.x.shape));
  } else if (const auto fixed = p.cond.tensors.find(runtime::kFixedFrames); fixed != p.cond.tensors.end()) {
    // TI2V: the job starts with its first frame(s) from the image (the official
    // (1 − mask)·image + mask·noise).
    try {
      runtime::reset_fixed_frames(p.x, fixed->second);
    } catch (const Error& e) {
      fail("image: {}: {}", *job.image, e.what());
    }
  }
  p.shift = job.shift.value_or(runtime::Shift::parse(defaults.shift));
  const int steps = int(job.steps.value_or(defaults.steps));
  const double denoise = job.denoise.value_or(1.0);
  // The model's own sampler unless the job names one: Wan's official code samples with UniPC.
  p.sampler = job.sampler.value_or(defaults.sampler.empty() ? "euler" : defaults.sampler);
  const std::optional<runtime::SamplerKind> sampler = runtime::sampler_from_name(p.sampler);
  if (!sampler) fail("sampler: the model's config names '{}', which is not available ({})", p.sampler, runtime::kSamplerNames);
  if (runtime::is_wan_solver(*sampler) && config.family != arch::Family::Wan)
    fail("sampler: '{}' is Wan's official solver; {} models take euler or ComfyUI's samplers", p.sampler,
         arch::family_name(config.family));
  if (*sampler != runtime::SamplerKind::euler && denoise < 0.9999)
    fail("denoise: '{}' runs whole schedules; partial denoising takes euler (\"sampler\": \"euler\")", p.sampler);
  if (runtime::is_comfy_unipc(*sampler) && steps < 2) fail("steps: '{}' needs at least 2", p.sampler);
  const std::string scheduler = job.scheduler.value_or("model");
  p.scheduler = scheduler;
  const double constant_shift = p.shift.kind == runtime::Shift::Constant ? p.shift.value : 1.0;
  const auto wan_official = [&]() -> std::optional<runtime::WanSolver> {
    // The model's own schedule for this sampler: Wan's official one for UniPC- and DPM-style samplers.
    if (config.family != arch::Family::Wan || *sampler == runtime::SamplerKind::euler) return std::nullopt;
    return *sampler == runtime::SamplerKind::wan_dpmpp || *sampler == runtime::SamplerKind::dpmpp_2m
               ? runtime::WanSolver::dpmpp
               : runtime::WanSolver::unipc;
  }();
  if (scheduler != "model" || wan_official) {
    if (p.shift.dynamic())
      fail("shift: {} does not apply to sampler '{}' with scheduler '{}' (give a number)", p.shift.str(), p.sampler, scheduler);
    if (denoise < 0.9999) fail("denoise: scheduler '{}' runs whole schedules; partial denoising takes the model's", scheduler);
  }
  // SD3's own schedule (Stability's sd3_infer.py): timesteps evenly spaced from 1000·σ_max to
  // 1000·σ_min, each shifted again on the way back to a sigma, which is ComfyUI's `normal`.
  const bool sd3_schedule = scheduler == "model" && config.family == arch::Family::SD3;
  if (sd3_schedule && (p.shift.dynamic() || denoise < 0.9999))
    fail("{}: SD3's schedule takes a constant shift and whole schedules", p.shift.dynamic() ? "shift" : "denoise");
  if (scheduler != "model" || sd3_schedule) {
    // ComfyUI's schedulers; the model gets 1000·σ, as in ComfyUI.
    p.sigmas = runtime::comfy_sigmas(sd3_schedule ? runtime::ComfyScheduler::normal
                                                  : *runtime::comfy_scheduler_from_name(scheduler),
                                     steps, constant_shift, runtime::is_comfy_unipc(*sampler));
  } else if (wan_official) {
    runtime::WanSchedule schedule = runtime::wan_schedule(*wan_official, steps, constant_shift);
    p.sigmas = std::move(schedule.sigmas);
    // Wan's official solvers give the model the official integer timestep.
    if (runtime::is_wan_solver(*sampler)) p.timesteps = std::move(schedule.timesteps);
  } else {
    // ComfyUI's partial denoise: the last `steps` steps of a schedule of steps/denoise steps.
    const int total = denoise > 0.9999 ? steps : std::max(steps, int(double(steps) / denoise));
    p.sigmas = runtime::flow_sigmas(total, p.shift, denoiser.image_tokens(p.x.shape));
    p.sigmas.erase(p.sigmas.begin(), p.sigmas.end() - (steps + 1));
  }
  if (job.image && use == ImageUse::picture) {
    // A flow model's noised latent at σ: σ·noise + (1 − σ)·image.
    const double s0 = p.sigmas.front();
    for (size_t i = 0; i < p.x.data.size(); ++i)
      p.x.data[i] = float(s0 * p.x.data[i] + (1.0 - s0) * image_latent.data[i]);
  }
  return p;
}

}  // namespace

runtime::SamplingJob prepare_job(const Job& job, const arch::ModelConfig& config, const models::Denoiser& denoiser,
                                 RunVae* vae, RunEncoders* encoders) {
  return prepare(job, config, denoiser, vae, encoders, true);
}

void check_job(const Job& job, const arch::ModelConfig& config, const models::Denoiser& denoiser) {
  prepare(job, config, denoiser, nullptr, nullptr, false);
}

namespace {

// The latent-to-RGB preview as DIR/name. The schedule ends at σ = 0, where the latent is its
// own x0 estimate: that is what the preview shows.
std::string write_latent_preview(const std::string& out_dir, const std::string& name, const HostTensor& latent,
                                 const arch::ModelConfig& config) {
  int width = 0, height = 0;
  const std::vector<uint8_t> rgb = models::preview_rgb(latent, models::latent_format_for(config), width, height);
  media::write_png_rgb((std::filesystem::path(out_dir) / name).string(), rgb, width, height);
  return name;
}

}  // namespace

std::optional<LedgerEntry> finish_from_latent(const std::string& out_dir, const Job& job,
                                              const arch::ModelConfig& config, RunVae& vae, bool preview) {
  const std::filesystem::path dir(out_dir);
  const std::string latent_name = job.id + ".safetensors";
  if (!std::filesystem::exists(dir / latent_name) || job.output == "latent") return std::nullopt;
  const auto metadata = formats::Checkpoint((dir / latent_name).string()).safetensors_metadata();
  const auto field = [&](const char* key) {
    const auto it = metadata.find(key);
    return it == metadata.end() ? std::string() : it->second;
  };
  const int steps = int(job.steps.value_or(config.sampling.steps));
  if (field("id") != job.id || field("model") != config.variant || field("steps") != std::to_string(steps) ||
      field("seed") != (job.seed ? std::to_string(*job.seed) : "noise file"))
    return std::nullopt;  // another job's latent, or this job's with other settings: render it again

  const auto start = std::chrono::steady_clock::now();
  const HostTensor latent = models::read_host_tensors((dir / latent_name).string()).at("latent");
  nlohmann::json parameters(metadata);
  parameters["vae"] = vae.name();
  LedgerEntry entry;
  entry.id = job.id;
  entry.status = LedgerStatus::done;
  entry.vae = vae.name();
  entry.outputs = {latent_name, write_picture(out_dir, job.id, vae.decode(latent), job.output.value_or(""),
                                              job.fps.value_or(default_fps(config)), parameters.dump())};
  if (preview) entry.outputs.push_back(write_latent_preview(out_dir, job.id + ".preview.png", latent, config));
  entry.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return entry;
}

std::string job_parameters(const runtime::SamplingJob& p, const arch::ModelConfig& config, const std::string& vae) {
  nlohmann::json j;
  j["id"] = p.id;
  j["model"] = config.variant;
  j["steps"] = p.steps();
  j["sampler"] = p.sampler;
  if (p.scheduler != "model") j["scheduler"] = p.scheduler;
  j["shift"] = p.shift.str();
  j["guidance"] = p.guidance.guidance;
  j["cfg"] = p.guidance.cfg;
  if (p.experts) {
    j["cfg_low"] = p.experts->cfg_low;
    j["boundary"] = p.experts->boundary;
  }
  if (p.seed) j["seed"] = *p.seed;
  else j["noise"] = "file";
  j["sigma_start"] = p.sigmas.empty() ? 0.0 : p.sigmas.front();
  if (p.prompt) {
    j["prompt"] = *p.prompt;
    if (p.negative_prompt) j["negative_prompt"] = *p.negative_prompt;
  } else {
    j["cond"] = p.cond.source;
  }
  if (!vae.empty()) j["vae"] = vae;
  return j.dump();
}

std::vector<std::string> write_job_outputs(const std::string& out_dir, const runtime::SamplingJob& p, const HostTensor& latent,
                                           const arch::ModelConfig& config, const std::string& backend_name,
                                           const JobPictures& pictures) {
  const std::string latent_name = p.id + ".safetensors";
  const std::filesystem::path dir(out_dir);
  std::map<std::string, std::string> metadata{{"id", p.id},
                                              {"model", config.variant},
                                              {"steps", std::to_string(p.steps())},
                                              {"shift", p.shift.str()},
                                              {"guidance", fmt::format("{}", p.guidance.guidance)},
                                              {"cfg", fmt::format("{}", p.guidance.cfg)},
                                              {"seed", p.seed ? std::to_string(*p.seed) : "noise file"},
                                              {"backend", backend_name}};
  models::write_host_tensors((dir / latent_name).string(), {{"latent", &latent}}, metadata);
  std::vector<std::string> names{latent_name};

  const auto write_preview = [&](const std::string& name) {
    names.push_back(write_latent_preview(out_dir, name, latent, config));
  };
  if (!pictures.decoder) {
    if (pictures.output == "latent") return names;
    try {
      write_preview(p.id + ".png");
    } catch (...) {
      std::error_code ignored;  // without a VAE a job is its two outputs together or not at all
      std::filesystem::remove(dir / latent_name, ignored);
      throw;
    }
    return names;
  }
  try {
    if (pictures.output != "latent") {
      const HostTensor pixels = pictures.decoder->decode(latent);
      names.push_back(write_picture(out_dir, p.id, pixels, pictures.output,
                                    pictures.fps.value_or(default_fps(config)),
                                    job_parameters(p, config, pictures.decoder->name())));
    }
    if (pictures.preview) write_preview(p.id + ".preview.png");
  } catch (const Error& e) {
    fail("{} (the latent {} is kept: `ditrun decode {} {} --out {}` finishes it)", e.what(),
         (dir / latent_name).string(), pictures.decoder->path(), (dir / latent_name).string(),
         (dir / (p.id + (latent.shape.size() == 4 && latent.shape[1] > 1 ? ".mp4" : ".png"))).string());
  }
  return names;
}

}  // namespace ditrun::launcher
