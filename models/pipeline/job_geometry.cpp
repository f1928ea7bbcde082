#include "models/pipeline/job_geometry.h"

#include "runtime/core/error.h"

namespace ditrun::models {
namespace {

void resolve_steps(const arch::ModelConfig& config, const JobSettings& s, JobGeometry& g) {
  const int64_t steps = s.steps.value_or(config.sampling.steps);
  if (steps < 1 || steps > 10000) fail("steps must be between 1 and 10000 (got {})", steps);
  g.steps = int(steps);
  g.cfg = s.cfg.value_or(config.sampling.cfg);
}

JobGeometry flux_geometry(const arch::ModelConfig& config, const JobSettings& s) {
  const arch::FluxParams& p = arch::flux_params(config);
  JobGeometry g;
  g.width = s.width.value_or(1024);
  g.height = s.height.value_or(1024);
  g.frames = s.frames.value_or(1);
  if (g.width <= 0 || g.height <= 0) fail("width and height must be positive (got {}x{})", g.width, g.height);
  if (g.frames != 1) fail("Flux renders images: frames must be 1 (got {})", g.frames);
  resolve_steps(config, s, g);
  if (g.cfg != 1) fail("Flux models take embedded guidance, not classifier-free guidance: cfg must be 1 (got {})", g.cfg);
  // The T5 length the reference pipelines encode prompts to (models.md §1).
  const int64_t text = s.text_tokens.value_or(p.guidance_embed ? 512 : 256);
  if (text < 0 || text > 1 << 20) fail("text tokens must be between 0 and {} (got {})", 1 << 20, text);
  g.tokens = {((g.height + 15) / 16) * ((g.width + 15) / 16), text};
  g.batch = 1;
  return g;
}

JobGeometry wan_geometry(const arch::ModelConfig& config, const JobSettings& s) {
  const arch::WanParams& p = arch::wan_params(config);
  JobGeometry g;
  g.width = s.width.value_or(832);
  g.height = s.height.value_or(480);
  g.frames = s.frames.value_or(81);
  if (g.width <= 0 || g.height <= 0 || g.width % 16 != 0 || g.height % 16 != 0)
    fail("Wan renders sizes that are multiples of 16 pixels (got {}x{})", g.width, g.height);
  if (g.frames < 1 || (g.frames - 1) % 4 != 0) fail("Wan renders 4k+1 frames (1, 5, ..., 81); got {}", g.frames);
  resolve_steps(config, s, g);
  const int64_t text = s.text_tokens.value_or(p.text_len);
  if (text < 0 || text > p.text_len) fail("text tokens must be between 0 and the model's text_len {} (got {})", p.text_len, text);
  // The network pads every prompt to text_len, so that is what it computes on.
  g.tokens = {(1 + (g.frames - 1) / 4) * (g.height / 16) * (g.width / 16), p.text_len};
  g.batch = g.cfg != 1 ? 2 : 1;
  return g;
}

}  // namespace

JobGeometry job_geometry(const arch::ModelConfig& config, const JobSettings& settings) {
  switch (config.family) {
    case arch::Family::Flux: return flux_geometry(config, settings);
    case arch::Family::Wan: return wan_geometry(config, settings);
    default: break;
  }
  fail("sampling {} models is not supported yet", arch::family_name(config.family));
}

}  // namespace ditrun::models
