// `ditrun synth`: a model with deterministic random weights in a real architecture's naming
// and layout, in any weight encoding, as safetensors or GGUF (by the output's extension).
#include <spdlog/spdlog.h>

#include "launcher/commands.h"
#include "runtime/core/progress.h"
#include "runtime/core/units.h"
#include "models/arch/detect.h"
#include "models/text/text_encoder_synth.h"
#include "models/vae/vae_synth.h"
#include "models/pipeline/model_source.h"
#include "models/synth/synthetic_model.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

// --arch flux|wan with --preset tiny|full picks a built-in preset; --preset may also name
// any preset directly (flux-schnell, wan2.1-t2v-1.3b, ...) or a config JSON file.
arch::ModelConfig resolve_preset(const std::string& family, const std::string& preset) {
  if (preset.size() > 5 && preset.compare(preset.size() - 5, 5, ".json") == 0) {
    arch::ModelConfig config = arch::ModelConfig::from_json(models::read_json_file(preset), preset);
    if (!family.empty() && arch::family_name(config.family) != family)
      fail("{}: describes a {} model, but --arch is {}", preset, arch::family_name(config.family), family);
    return config;
  }
  static const std::map<std::pair<std::string, std::string>, std::string> kShorthand = {
      {{"flux", "tiny"}, "flux-tiny"},   {{"flux", "full"}, "flux-dev"},
      {{"wan", "tiny"}, "wan-tiny"},     {{"wan", "full"}, "wan2.1-t2v-14b"},
      {{"qwen_image", "full"}, "qwen-image"}, {{"sd3", "full"}, "sd3.5-large"}};
  if (auto it = kShorthand.find({family, preset}); it != kShorthand.end()) return arch::preset(it->second, "--preset");
  arch::ModelConfig config = arch::preset(preset, "--preset");
  if (!family.empty() && arch::family_name(config.family) != family)
    fail("--preset {} is a {} model, but --arch is {}", preset, arch::family_name(config.family), family);
  return config;
}

// A VAE: bf16 only (the released VAEs are bf16/f32 files and run unquantized).
void synth_vae(const std::string& arch, const std::string& preset, const std::string& weights, uint64_t seed,
               const std::string& out) {
  namespace vae = models::vae;
  if (weights != "bf16") fail("--weights {}: synthetic VAEs are written in bf16", weights);
  vae::VaeConfig config;
  if (preset.ends_with(".json")) config = vae::VaeConfig::from_json(models::read_json_file(preset), preset);
  else if (preset == "tiny") config = vae::tiny_vae_preset(arch == "flux-ae" ? "flux-ae-tiny" : "wan21-vae-tiny");
  else config = vae::vae_preset(preset == "full" ? (arch == "flux-ae" ? "flux-ae" : arch == "wan21-vae" ? "wan2.1-vae" : "wan2.2-vae") : preset);
  if (preset == "tiny" && arch == "wan22-vae") fail("--preset tiny: there is no built-in tiny wan22-vae (give a CONFIG.json)");
  if (config.name() != arch) fail("--preset {} is a {} VAE, but --arch is {}", preset, config.name(), arch);
  vae::write_synthetic_vae(config, seed, out);
  spdlog::info("synth: {} VAE seed {} -> {}", arch, seed, out);
}

// A text encoder: --arch t5|umt5|clip with --preset tiny (the built-in models' encoders),
// full (T5-XXL, umT5-XXL, CLIP-L), a preset name or a CONFIG.json (the reference schema).
void synth_text_encoder(const std::string& arch, const std::string& preset, const std::string& weights, uint64_t seed,
                        const std::string& out) {
  namespace text = models::text;
  text::TextEncoderConfig config;
  if (preset.ends_with(".json")) config = text::TextEncoderConfig::from_json(models::read_json_file(preset), preset);
  else if (preset == "tiny") config = text::text_encoder_preset(arch == "clip" ? "clip-builtin" : arch + "-builtin");
  else if (preset == "full") config = text::text_encoder_preset(arch == "clip" ? "clip-l" : arch + "-xxl");
  else config = text::text_encoder_preset(preset);
  const std::string want = arch == "clip" ? "clip-text" : arch;
  if (config.architecture != want) fail("--preset {} is a {} encoder, but --arch is {}", preset, config.architecture, arch);
  const quant::ConversionTarget target = quant::ConversionTarget::parse(weights);
  quant::check_container_fits(out, target);
  if (config.is_clip() && quant::path_is_gguf(out)) fail("--out {}: CLIP text encoders are written as .safetensors", out);
  Progress progress("synth", "tensors");
  const auto stats = text::write_synthetic_text_encoder(config, target, seed, out, [&](size_t done, size_t total, const std::string& name) {
    progress.update(done, total, name);
  });
  const std::string tokenizer =
      quant::path_is_gguf(out) ? "in its metadata" : "in " + text::tokenizer_folder_beside(out);
  progress.finish(fmt::format("wrote {} ({} encoder, {} tensors, {}), its tokenizer {}", out, config.architecture,
                              stats.tensors_written, format_bytes(uint64_t(stats.bytes)), tokenizer));
}

}  // namespace

void add_synth_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "Write a model with deterministic random weights (for tests and benchmarks)");
  static std::string family, preset = "tiny", weights = "bf16", out;
  static uint64_t seed = 0;
  cmd->add_option("--arch", family,
                  "Architecture family: flux, wan, qwen_image, sd3; a VAE: flux-ae, wan21-vae, wan22-vae; a text encoder: "
                  "t5, umt5, clip");
  cmd->add_option("--preset", preset, "tiny, full, a preset name, or a CONFIG.json")->capture_default_str();
  cmd->add_option("--weights", weights, "Weight encoding: " + quant::conversion_targets_help())->capture_default_str();
  cmd->add_option("--seed", seed, "Random seed")->capture_default_str();
  cmd->add_option("--out", out, "Output .safetensors or .gguf")->required();
  cmd->callback([] {
    if (models::vae::vae_kind_from_name(family)) return synth_vae(family, preset, weights, seed, out);
    if (family == "t5" || family == "umt5" || family == "clip") return synth_text_encoder(family, preset, weights, seed, out);
    synth::SynthRequest request;
    request.config = resolve_preset(family, preset);
    request.target = quant::ConversionTarget::parse(weights);
    request.seed = seed;
    request.out_path = out;
    quant::check_container_fits(out, request.target);
    spdlog::info("synth: {} ({}) weights {} seed {} -> {}", request.config.variant, arch::family_name(request.config.family),
                 weights, seed, out);
    Progress progress("synth", "tensors");
    const auto stats = synth::write_synthetic_model(request, [&](size_t done, size_t total, const std::string& name) {
      progress.update(done, total, name);
    });
    progress.finish(fmt::format("wrote {} ({} tensors, {})", out, stats.tensors_written, format_bytes(uint64_t(stats.bytes))));
  });
}

}  // namespace ditrun::launcher
