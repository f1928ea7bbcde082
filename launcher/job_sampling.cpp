#include "launcher/job_sampling.h"

#include <fmt/format.h>

#include <filesystem>

#include "launcher/png_writer.h"
#include "models/pipeline/latent_preview.h"
#include "models/pipeline/noise_file.h"
#include "models/pipeline/tensor_files.h"
#include "runtime/core/error.h"
#include "runtime/sampling/noise.h"

namespace ditrun::launcher {

PreparedJob prepare_job(const Job& job, const arch::ModelConfig& config, const models::Denoiser& denoiser) {
  const arch::SamplingDefaults& defaults = config.sampling;
  PreparedJob p;
  p.job = job;
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

std::vector<std::string> write_job_outputs(const std::string& out_dir, const PreparedJob& p, const HostTensor& latent,
                                           const arch::ModelConfig& config, const std::string& backend_name) {
  // The schedule ends at σ = 0, where the latent is its own x0 estimate: that is what the
  // preview shows.
  const std::string latent_name = p.job.id + ".safetensors", preview_name = p.job.id + ".png";
  const std::filesystem::path dir(out_dir);
  models::write_host_tensors((dir / latent_name).string(), {{"latent", &latent}},
                             {{"id", p.job.id},
                              {"model", config.variant},
                              {"steps", std::to_string(p.steps())},
                              {"shift", p.shift.str()},
                              {"guidance", fmt::format("{}", p.guidance.guidance)},
                              {"cfg", fmt::format("{}", p.guidance.cfg)},
                              {"seed", p.job.seed ? std::to_string(*p.job.seed) : "noise file"},
                              {"backend", backend_name}});
  try {
    int width = 0, height = 0;
    const std::vector<uint8_t> rgb = models::preview_rgb(latent, models::latent_format_for(config), width, height);
    write_png_rgb((dir / preview_name).string(), rgb, width, height);
  } catch (...) {
    std::error_code ignored;  // a job is its outputs together or not at all
    std::filesystem::remove(dir / latent_name, ignored);
    throw;
  }
  return {latent_name, preview_name};
}

void put_job(const PreparedJob& p, transport::TensorMessage& m) {
  nlohmann::json job = {{"id", p.job.id},
                        {"line", p.job.line},
                        {"cond_source", p.cond.source},
                        {"guidance", p.guidance.guidance},
                        {"cfg", p.guidance.cfg},
                        {"shift", p.shift.str()},
                        {"sigmas", p.sigmas}};
  if (p.job.seed) job["seed"] = *p.job.seed;
  m.header["job"] = std::move(job);
  for (const auto& [name, t] : p.cond.tensors) m.tensors["cond/" + name] = t;
  m.tensors["x"] = p.x;
}

PreparedJob take_job(transport::TensorMessage& m) {
  PreparedJob p;
  try {
    const nlohmann::json& j = m.header.at("job");
    p.job.id = j.at("id").get<std::string>();
    p.job.line = j.at("line").get<int>();
    if (j.contains("seed")) p.job.seed = j.at("seed").get<uint64_t>();
    p.cond.source = j.at("cond_source").get<std::string>();
    p.guidance = {j.at("guidance").get<double>(), j.at("cfg").get<double>()};
    p.shift = runtime::Shift::parse(j.at("shift").get<std::string>());
    p.sigmas = j.at("sigmas").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    fail("job message: {}", e.what());
  }
  if (p.sigmas.size() < 2) fail("job message '{}': {} sigmas", p.job.id, p.sigmas.size());
  for (auto it = m.tensors.begin(); it != m.tensors.end();) {
    if (it->first.starts_with("cond/")) {
      p.cond.tensors[it->first.substr(5)] = std::move(it->second);
      it = m.tensors.erase(it);
    } else {
      ++it;
    }
  }
  p.x = m.tensor("x");
  m.tensors.erase("x");
  return p;
}

}  // namespace ditrun::launcher
