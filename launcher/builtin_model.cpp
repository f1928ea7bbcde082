#include "launcher/builtin_model.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <filesystem>

#include "models/arch/detect.h"
#include "models/pipeline/tensor_files.h"
#include "models/synth/synthetic_model.h"
#include "models/text/text_encoder_synth.h"
#include "models/vae/vae_synth.h"
#include "runtime/core/error.h"
#include "runtime/sampling/noise.h"

namespace ditrun::launcher {

namespace {
constexpr const char* kPreset = "flux-tiny";
constexpr int64_t kPromptTokens = 16;
constexpr uint64_t kCondSeed = 1;
}  // namespace

BuiltinModel::BuiltinModel() : BuiltinModel(arch::preset(kPreset, "built-in model"), "bf16", kPromptTokens) {
  spdlog::info("no model given: using the built-in {} and its tiny VAE (deterministic weights, synthetic conditioning)",
               kPreset);
}

BuiltinModel::BuiltinModel(const arch::ModelConfig& flux_config, const std::string& weights, int64_t prompt_tokens) {
  if (flux_config.family != arch::Family::Flux) fail("synthetic models with conditioning are Flux models");
  std::string templ = (std::filesystem::temp_directory_path() / "ditrun-builtin-XXXXXX").string();
  if (!::mkdtemp(templ.data())) fail("cannot create a temporary folder for the built-in model under {}", templ);
  dir_ = templ;
  try {
    write_files(flux_config, weights, prompt_tokens);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    throw;
  }
}

void BuiltinModel::write_files(const arch::ModelConfig& flux_config, const std::string& weights,
                               int64_t prompt_tokens) {
  const quant::ConversionTarget target = quant::ConversionTarget::parse(weights);
  model_ = dir_ + "/model" + (target.writes_gguf() ? ".gguf" : ".safetensors");
  cond_ = dir_ + "/cond.safetensors";

  synth::SynthRequest request;
  request.config = flux_config;
  request.target = target;
  request.seed = 0;
  request.out_path = model_;
  synth::write_synthetic_model(request);

  // A stand-in for an encoded prompt: unit normals, as text-encoder outputs roughly are.
  const arch::FluxParams& p = arch::flux_params(request.config);
  const HostTensor txt = runtime::seeded_noise(kCondSeed, {prompt_tokens, p.context_in_dim});
  const HostTensor y = runtime::seeded_noise(kCondSeed + 1, {p.vec_in_dim});
  models::write_host_tensors(cond_, {{"txt", &txt}, {"y", &y}});

  vae_ = dir_ + "/vae.safetensors";
  models::vae::write_synthetic_vae(models::vae::tiny_vae_preset("flux-ae-tiny"), 0, vae_);

  // Encoders whose widths are the model's (the tiny Flux's context and pooled vector).
  namespace text = models::text;
  text::TextEncoderConfig t5 = text::text_encoder_preset("t5-builtin"), clip = text::text_encoder_preset("clip-builtin");
  if (t5.width() == p.context_in_dim && clip.width() == p.vec_in_dim) {
    t5_ = dir_ + "/t5.safetensors";
    clip_ = dir_ + "/clip.safetensors";
    text::write_synthetic_text_encoder(t5, quant::ConversionTarget::parse("bf16"), 0, t5_);
    text::write_synthetic_text_encoder(clip, quant::ConversionTarget::parse("bf16"), 0, clip_);
  }
}

BuiltinModel::~BuiltinModel() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

}  // namespace ditrun::launcher
