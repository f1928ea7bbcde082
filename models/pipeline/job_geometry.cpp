#include "models/pipeline/job_geometry.h"

#include "models/pipeline/denoiser.h"
#include "runtime/core/error.h"

namespace ditrun::models {
namespace {

void resolve_steps(const arch::ModelConfig& config, const JobSettings& s, JobGeometry& g) {
  const int64_t steps = s.steps.value_or(config.sampling.steps);
  if (steps < 1 || steps > 10000) fail("steps must be between 1 and 10000 (got {})", steps);
  g.steps = int(steps);
  g.cfg = s.cfg.value_or(config.sampling.cfg);
}

// Flux: the T5 length the reference pipelines encode prompts to (models.md §1); one item
// per call (embedded guidance).
void flux_text_and_batch(const arch::ModelConfig& config, const JobSettings& s, JobGeometry& g) {
  const arch::FluxParams& p = arch::flux_params(config);
  if (g.cfg != 1) fail("Flux models take embedded guidance, not classifier-free guidance: cfg must be 1 (got {})", g.cfg);
  const int64_t text = s.text_tokens.value_or(p.guidance_embed ? 512 : 256);
  if (text < 0 || text > 1 << 20) fail("text tokens must be between 0 and {} (got {})", 1 << 20, text);
  g.tokens.text = text;
  g.batch = 1;
}

// Wan: the network pads every prompt to text_len, so that is what it computes on; CFG runs
// cond and uncond as one batch of two.
void wan_text_and_batch(const arch::ModelConfig& config, const JobSettings& s, JobGeometry& g) {
  const arch::WanParams& p = arch::wan_params(config);
  const int64_t text = s.text_tokens.value_or(p.text_len);
  if (text < 0 || text > p.text_len) fail("text tokens must be between 0 and the model's text_len {} (got {})", p.text_len, text);
  g.tokens.text = p.text_len;
  g.batch = g.cfg != 1 ? 2 : 1;
}

// The MMDiT families: their prompts at `default_tokens` unless given (at least `fewest`); CFG
// runs cond and uncond as one batch of two.
//   SD3.5       the context sd3_infer builds, CLIP-L‖G's 77 tokens then T5's (at least 77:
//               its tokenizer pads to 77 and never truncates);
//   Qwen-Image  each prompt at its own length (the pipeline drops the chat template's 34
//               system tokens and does not pad); 256 tokens plan a long prompt.
void guided_text_and_batch(const JobSettings& s, JobGeometry& g, int64_t default_tokens, int64_t fewest) {
  const int64_t text = s.text_tokens.value_or(default_tokens);
  if (text < fewest || text > 1 << 20) fail("text tokens must be between {} and {} (got {})", fewest, 1 << 20, text);
  g.tokens.text = text;
  g.batch = g.cfg != 1 ? 2 : 1;
}

}  // namespace

JobGeometry job_geometry(const arch::ModelConfig& config, const JobSettings& settings) {
  // The Denoiser owns the size rules (and their messages): the planner prices exactly the
  // latent a job will render.
  const std::unique_ptr<Denoiser> denoiser = make_denoiser(config);
  const bool wan = config.family == arch::Family::Wan;
  JobGeometry g;
  g.width = settings.width.value_or(wan ? 832 : 1024);
  g.height = settings.height.value_or(wan ? 480 : 1024);
  g.frames = settings.frames.value_or(wan ? 81 : 1);
  g.tokens.image = denoiser->image_tokens(denoiser->latent_shape(g.width, g.height, g.frames));
  resolve_steps(config, settings, g);
  if (wan) wan_text_and_batch(config, settings, g);
  else if (config.family == arch::Family::SD3) guided_text_and_batch(settings, g, 77 + 77, 0);
  else if (config.family == arch::Family::QwenImage) guided_text_and_batch(settings, g, 256, 1);
  else flux_text_and_batch(config, settings, g);
  return g;
}

}  // namespace ditrun::models
