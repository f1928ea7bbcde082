#include "launcher/job_sampling.h"

#include <fmt/format.h>

#include <filesystem>

#include "media/png.h"
#include "models/pipeline/latent_preview.h"
#include "models/pipeline/noise_file.h"
#include "models/pipeline/tensor_files.h"
#include "runtime/core/error.h"
#include "runtime/sampling/noise.h"

namespace ditrun::launcher {

runtime::SamplingJob prepare_job(const Job& job, const arch::ModelConfig& config, const models::Denoiser& denoiser) {
  const arch::SamplingDefaults& defaults = config.sampling;
  runtime::SamplingJob p;
  p.id = job.id;
  p.line = job.line;
  p.seed = job.seed;
  p.guidance = {job.guidance.value_or(defaults.guidance), job.cfg.value_or(defaults.cfg)};
  p.cond = {models::read_host_tensors(job.cond), job.cond};
  denoiser.check_conditioning(p.cond, p.guidance);
  if (job.noise) {
    p.x = models::load_noise_file(*job.noise);
    denoiser.check_latent(p.x.shape);
    if (job.width) {
      const Shape want = denoiser.latent_shape(*job.width, *job.height, job.frames.value_or(1));
      if (want != p.x.shape)
        fail("noise {} has shape {}, but {}x{} pixels need {}", *job.noise, shape_string(p.x.shape), *job.width,
             *job.height, shape_string(want));
    }
  } else {
    p.x = runtime::seeded_noise(*job.seed, denoiser.latent_shape(*job.width, *job.height, job.frames.value_or(1)));
  }
  p.shift = job.shift.value_or(runtime::Shift::parse(defaults.shift));
  p.sigmas = runtime::flow_sigmas(int(job.steps.value_or(defaults.steps)), p.shift, denoiser.image_tokens(p.x.shape));
  return p;
}

std::vector<std::string> write_job_outputs(const std::string& out_dir, const runtime::SamplingJob& p, const HostTensor& latent,
                                           const arch::ModelConfig& config, const std::string& backend_name) {
  // The schedule ends at σ = 0, where the latent is its own x0 estimate: that is what the
  // preview shows.
  const std::string latent_name = p.id + ".safetensors", preview_name = p.id + ".png";
  const std::filesystem::path dir(out_dir);
  models::write_host_tensors((dir / latent_name).string(), {{"latent", &latent}},
                             {{"id", p.id},
                              {"model", config.variant},
                              {"steps", std::to_string(p.steps())},
                              {"shift", p.shift.str()},
                              {"guidance", fmt::format("{}", p.guidance.guidance)},
                              {"cfg", fmt::format("{}", p.guidance.cfg)},
                              {"seed", p.seed ? std::to_string(*p.seed) : "noise file"},
                              {"backend", backend_name}});
  try {
    int width = 0, height = 0;
    const std::vector<uint8_t> rgb = models::preview_rgb(latent, models::latent_format_for(config), width, height);
    media::write_png_rgb((dir / preview_name).string(), rgb, width, height);
  } catch (...) {
    std::error_code ignored;  // a job is its outputs together or not at all
    std::filesystem::remove(dir / latent_name, ignored);
    throw;
  }
  return {latent_name, preview_name};
}

}  // namespace ditrun::launcher
