// The built-in default for `ditrun run` without a model: the tiny Flux preset with
// deterministic weights (synth seed 0), a deterministic conditioning file and a tiny Flux VAE
// (models/vae/vae_synth.h, 8 pixels per latent position) and tiny T5 and CLIP encoders for
// prompts (models/text/text_encoder_synth.h), made on the fly
// in a private temporary folder that is removed when this object goes away. It lets a fresh
// machine render something end to end with no downloads. Benchmarks and tests make other
// Flux shapes the same way.
#pragma once

#include <cstdint>
#include <string>

#include "models/arch/model_config.h"

namespace ditrun::launcher {

class BuiltinModel {
 public:
  BuiltinModel();  // flux-tiny, bf16, 16 prompt tokens
  // Any Flux config in any weight encoding ("bf16", "q8_0", "fp8", ...), with a synthetic
  // prompt of `prompt_tokens` tokens.
  BuiltinModel(const arch::ModelConfig& flux_config, const std::string& weights, int64_t prompt_tokens);
  ~BuiltinModel();
  BuiltinModel(const BuiltinModel&) = delete;
  BuiltinModel& operator=(const BuiltinModel&) = delete;

  const std::string& model_path() const { return model_; }
  const std::string& cond_path() const { return cond_; }  // txt [16, ctx] and y [vec]
  const std::string& vae_path() const { return vae_; }    // the tiny Flux VAE (flux-ae-tiny)
  // Text encoders for the tiny Flux's prompts (presets t5-builtin, clip-builtin), each with its
  // synthetic tokenizer beside it; empty for other Flux configs.
  const std::string& t5_path() const { return t5_; }
  const std::string& clip_path() const { return clip_; }

 private:
  void write_files(const arch::ModelConfig& flux_config, const std::string& weights, int64_t prompt_tokens);

  std::string dir_, model_, cond_, vae_, t5_, clip_;
};

}  // namespace ditrun::launcher
