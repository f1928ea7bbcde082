// `ditrun encode MODEL --prompt TEXT [--negative-prompt TEXT] --out COND.safetensors` with the
// encoders (--t5/--clip, --text-encoder or --models DIR): the conditioning file a job's `cond`
// takes (Flux: txt, y; Wan: context, context_neg; SD3.5: context, y, context_neg, y_neg), so
// that other tools can use ditrun's encoders. MODEL (a checkpoint or a preset name) says which
// family and lengths; the negative prompt is the release's default unless one is given (Wan's
// sample_neg_prompt, SD3.5's empty prompt).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>

#include "launcher/backend_options.h"
#include "launcher/commands.h"
#include "launcher/models_dir.h"
#include "launcher/text_encoders.h"
#include "models/arch/detect.h"
#include "models/pipeline/model_source.h"
#include "models/pipeline/tensor_files.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

struct EncodeOptions {
  std::string model, prompt, out;
  std::optional<std::string> negative_prompt, config;
  TextEncoderOptions encoders;
  BackendOptions backend;
};

void encode(const EncodeOptions& o) {
  std::error_code ec;
  std::string model = o.model;
  if (!std::filesystem::exists(model, ec) && o.encoders.models_dir) {
    try {
      model = resolve_model_path(model, o.encoders.models_dir);
    } catch (const Error&) {  // a preset name
    }
  }
  const arch::ModelConfig config = std::filesystem::exists(model, ec) ? models::open_model(model, o.config).config
                                                                       : arch::preset(model, "model");
  if (!o.encoders.given())
    fail("no text encoders: give --t5 and --clip (Flux), --text-encoder (Wan), --t5, --clip and --clip-g (SD3.5), or "
         "--models DIR");
  RunEncoders encoders(o.encoders, config, "");
  encoders.place_on(o.backend);
  std::optional<std::string> negative = o.negative_prompt;
  if (models::text::takes_negative_prompt(config) && !negative) negative = models::text::default_negative_prompt(config);
  const auto start = std::chrono::steady_clock::now();
  const runtime::HostTensors tensors = encoders.conditioning("encode", o.prompt, negative);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<std::pair<std::string, const HostTensor*>> list;
  for (const char* name : {"txt", "y", "context", "context_neg", "y_neg"})
    if (auto it = tensors.find(name); it != tensors.end()) list.emplace_back(name, &it->second);
  std::map<std::string, std::string> metadata{{"model", config.variant}, {"prompt", o.prompt}, {"encoders", encoders.describe()}};
  if (negative) metadata["negative_prompt"] = *negative;
  models::write_host_tensors(o.out, list, metadata);
  std::vector<std::string> shapes;
  for (const auto& [name, t] : list) shapes.push_back(fmt::format("{} {}", name, shape_string(t->shape)));
  fmt::print("{}: {} in {:.2f} s -> {}\n", config.variant, fmt::join(shapes, ", "), seconds, o.out);
}

}  // namespace

void add_encode_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("encode", "Encode a prompt into the conditioning file a job's 'cond' takes");
  static EncodeOptions o;
  cmd->add_option("model", o.model, "The diffusion model (a checkpoint or a preset name): its family and lengths")->required();
  cmd->add_option("--prompt", o.prompt, "The prompt (may be empty)")->required();
  cmd->add_option("--negative-prompt", o.negative_prompt,
                  "Wan's and SD3.5's negative prompt (default: the release's; SD3.5's is empty)");
  cmd->add_option("--out", o.out, "Output .safetensors")->required();
  cmd->add_option("--config", o.config, "A sidecar config JSON for the model checkpoint");
  add_text_encoder_options(*cmd, o.encoders);
  add_backend_options(*cmd, o.backend);
  cmd->callback([] { encode(o); });
}

}  // namespace ditrun::launcher
