// `ditrun forward MODEL --inputs IO.safetensors --out OUT.safetensors`: one model call on the
// `in.*` tensors of a reference io file (../shared/testdata/README.md), writing `out` and the
// per-block outputs under the reference names. This is how ditrun is checked against the
// official implementations. For a VAE, every direction whose input is present runs: `in.z`
// → `decode.out`, `in.image` / `in.video` → `encode.mean` and `encode.out`, with the
// intermediates under their reference names.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "launcher/backend_options.h"
#include "launcher/commands.h"
#include "models/pipeline/model_source.h"
#include "models/pipeline/network.h"
#include "models/pipeline/tensor_files.h"
#include "models/vae/vae.h"
#include "models/vae/vae_source.h"
#include "runtime/core/error.h"
#include "runtime/exec/model_call.h"
#include "runtime/exec/weight_store.h"

namespace ditrun::launcher {
namespace {

struct ForwardOptions {
  std::string model, inputs, out;
  std::optional<std::string> config;
  BackendOptions backend;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void run_vae_forward(const ForwardOptions& o) {
  const models::vae::VaeSource src = models::vae::open_vae(o.model, o.config);
  const runtime::HostTensors inputs = models::read_host_tensors(o.inputs, "in.");
  const auto z = inputs.find("z");
  const auto pixels = inputs.find(src.config.video() ? "video" : "image");
  if (z == inputs.end() && pixels == inputs.end())
    fail("{}: no in.z to decode and no in.{} to encode for {}", o.inputs, src.config.video() ? "video" : "image",
         src.config.name());

  auto backend = make_backend(o.backend);
  auto vae = models::vae::make_vae(src.config, *backend, *src.weights, o.model);
  std::vector<std::pair<std::string, HostTensor>> outputs;
  const auto sink = [&](const std::string& name, const HostTensor& t) { outputs.emplace_back(name, t); };
  const auto start = std::chrono::steady_clock::now();
  try {
    if (z != inputs.end()) outputs.emplace_back("decode.out", vae->decode(z->second, sink, models::vae::FramePass::WholeSequence));
    if (pixels != inputs.end()) {
      models::vae::Encoded e = vae->encode(pixels->second, sink);
      outputs.emplace_back("encode.mean", std::move(e.mean));
      outputs.emplace_back("encode.out", std::move(e.latent));
    }
  } catch (const Error& e) {
    fail("{}: {}", o.inputs, e.what());
  }
  const double seconds = seconds_since(start);
  std::vector<std::pair<std::string, const HostTensor*>> tensors;
  for (const auto& [name, t] : outputs) tensors.emplace_back(name, &t);
  models::write_host_tensors(o.out, tensors,
                             {{"model", src.config.name()},
                              {"precision", std::string(runtime::precision_name(backend->precision()))},
                              {"backend", backend->name()}});
  fmt::print("{} ({}): {}{}{} in {:.3f} s -> {}\n", src.config.name(), src.config_source,
             z != inputs.end() ? "decode" : "", z != inputs.end() && pixels != inputs.end() ? " + " : "",
             pixels != inputs.end() ? "encode" : "", seconds, o.out);
}

void run_forward(const ForwardOptions& o) {
  if (models::vae::is_vae(o.model, o.config)) return run_vae_forward(o);
  const models::ModelSource src = models::open_model(o.model, o.config);
  const auto network = models::make_network(src.config);
  models::check_weights_present(*network, *src.weights);
  const runtime::HostTensors inputs = models::read_host_tensors(o.inputs, "in.");
  if (inputs.empty()) fail("{}: no 'in.*' tensors", o.inputs);

  auto backend = make_backend(o.backend);
  runtime::WeightStore weights(*backend, *network, [&](const std::string& n) { return src.weights->find(n); });

  std::vector<std::pair<std::string, HostTensor>> block_outputs;
  const auto start = std::chrono::steady_clock::now();
  HostTensor out;
  try {
    out = runtime::run_model(*backend, *network, weights, inputs, [&](const std::string& name, const HostTensor& t) {
      block_outputs.emplace_back(name, t);
    });
  } catch (const Error& e) {
    fail("{}: {}", o.inputs, e.what());
  }
  const double seconds = seconds_since(start);

  std::vector<std::pair<std::string, const HostTensor*>> tensors;
  for (const auto& [name, t] : block_outputs) tensors.emplace_back(name, &t);
  tensors.emplace_back("out", &out);
  models::write_host_tensors(o.out, tensors,
                             {{"model", src.config.variant},
                              {"precision", std::string(runtime::precision_name(backend->precision()))},
                              {"backend", backend->name()}});
  fmt::print("{}: {} blocks, out {} in {:.3f} s -> {}\n", src.config.variant, network->blocks().size(),
             shape_string(out.shape), seconds, o.out);
}

}  // namespace

void add_forward_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("forward", "One model call on the in.* tensors of an io file; writes out and per-block outputs");
  static ForwardOptions o;
  cmd->add_option("model", o.model, "A .safetensors or .gguf checkpoint (a diffusion model or a VAE)")->required();
  cmd->add_option("--inputs", o.inputs, "Safetensors file with the in.* tensors")->required();
  cmd->add_option("--out", o.out, "Output safetensors file")->required();
  cmd->add_option("--config", o.config, "A sidecar config JSON (tiny or custom models)");
  add_backend_options(*cmd, o.backend);
  cmd->callback([] { run_forward(o); });
}

}  // namespace ditrun::launcher
