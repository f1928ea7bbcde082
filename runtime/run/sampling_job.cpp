#include "runtime/run/sampling_job.h"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/core/error.h"

namespace ditrun::runtime {

void reset_fixed_frames(HostTensor& x, const HostTensor& fixed) {
  const Shape& s = x.shape;
  const Shape& f = fixed.shape;
  if (s.size() != 4 || f.size() != 4 || f[0] != s[0] || f[1] > s[1] || f[2] != s[2] || f[3] != s[3])
    fail("fixed frames {} do not fit the latent {} ([C, frames, H, W] with the latent's C, H and W)", shape_string(f),
         shape_string(s));
  const size_t frame = size_t(s[2] * s[3]), kept = size_t(f[1]) * frame;
  for (int64_t c = 0; c < s[0]; ++c)
    std::copy_n(fixed.data.begin() + long(size_t(c) * kept), kept, x.data.begin() + long(size_t(c) * size_t(s[1]) * frame));
}

double SamplingJob::timestep_at(int step) const {
  if (step < 0 || step >= steps()) fail("job '{}': step {} is outside its {} steps", id, step + 1, steps());
  return timesteps.empty() ? 1000.0 * sigmas[size_t(step)] : timesteps[size_t(step)];
}

std::optional<Expert> SamplingJob::expert_at(int step) const {
  if (!experts) return std::nullopt;
  // The official rule: t >= boundary * num_train_timesteps, on the timestep the model gets.
  return timestep_at(step) >= experts->boundary * 1000.0 ? Expert::high_noise : Expert::low_noise;
}

Guidance SamplingJob::guidance_at(int step) const {
  Guidance g = guidance;
  if (expert_at(step) == Expert::low_noise) g.cfg = experts->cfg_low;
  return g;
}

void put_history(const SolverHistory& h, transport::TensorMessage& m) {
  m.header["history_order"] = h.last_order;
  m.header["history_estimates"] = h.estimates.size();
  for (size_t i = 0; i < h.estimates.size(); ++i) m.tensors[fmt::format("history/estimate.{}", i)] = h.estimates[i];
  if (!h.corrected.data.empty()) m.tensors["history/corrected"] = h.corrected;
}

std::optional<SolverHistory> take_history(transport::TensorMessage& m) {
  if (!m.header.contains("history_order")) return std::nullopt;
  SolverHistory h;
  h.last_order = m.header.at("history_order").get<int>();
  const size_t n = m.header.at("history_estimates").get<size_t>();
  for (size_t i = 0; i < n; ++i) {
    const std::string name = fmt::format("history/estimate.{}", i);
    h.estimates.push_back(m.tensor(name));
    m.tensors.erase(name);
  }
  if (m.tensors.count("history/corrected")) {
    h.corrected = m.tensor("history/corrected");
    m.tensors.erase("history/corrected");
  }
  m.header.erase("history_order");
  m.header.erase("history_estimates");
  return h;
}

void put_job(const SamplingJob& p, transport::TensorMessage& m) {
  nlohmann::json job = {{"id", p.id},           {"line", p.line},   {"cond_source", p.cond.source},
                        {"guidance", p.guidance.guidance}, {"cfg", p.guidance.cfg}, {"shift", p.shift.str()},
                        {"sigmas", p.sigmas}};
  if (p.seed) job["seed"] = *p.seed;
  if (p.sampler != "euler") job["sampler"] = p.sampler;
  if (p.scheduler != "model") job["scheduler"] = p.scheduler;
  if (!p.timesteps.empty()) job["timesteps"] = p.timesteps;
  if (p.prompt) job["prompt"] = *p.prompt;
  if (p.negative_prompt) job["negative_prompt"] = *p.negative_prompt;
  if (p.experts) job["experts"] = {{"boundary", p.experts->boundary}, {"cfg_low", p.experts->cfg_low}};
  m.header["job"] = std::move(job);
  for (const auto& [name, t] : p.cond.tensors) m.tensors["cond/" + name] = t;
  m.tensors["x"] = p.x;
}

SamplingJob take_job(transport::TensorMessage& m) {
  SamplingJob p;
  try {
    const nlohmann::json& j = m.header.at("job");
    p.id = j.at("id").get<std::string>();
    p.line = j.at("line").get<int>();
    if (j.contains("seed")) p.seed = j.at("seed").get<uint64_t>();
    p.cond.source = j.at("cond_source").get<std::string>();
    if (j.contains("sampler")) p.sampler = j.at("sampler").get<std::string>();
    if (j.contains("scheduler")) p.scheduler = j.at("scheduler").get<std::string>();
    if (j.contains("timesteps")) p.timesteps = j.at("timesteps").get<std::vector<double>>();
    if (j.contains("prompt")) p.prompt = j.at("prompt").get<std::string>();
    if (j.contains("negative_prompt")) p.negative_prompt = j.at("negative_prompt").get<std::string>();
    if (j.contains("experts"))
      p.experts = ExpertSwitch{j.at("experts").at("boundary").get<double>(), j.at("experts").at("cfg_low").get<double>()};
    p.guidance = {j.at("guidance").get<double>(), j.at("cfg").get<double>()};
    p.shift = Shift::parse(j.at("shift").get<std::string>());
    p.sigmas = j.at("sigmas").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    fail("job message: {}", e.what());
  }
  if (p.sigmas.size() < 2) fail("job message '{}': {} sigmas", p.id, p.sigmas.size());
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

}  // namespace ditrun::runtime
