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
#include "models/formats/checkpoint.h"
#include "models/pipeline/model_source.h"
#include "models/quant/weight_set.h"
#include "models/pipeline/network.h"
#include "models/pipeline/tensor_files.h"
#include "models/text/clip_text_encoder.h"
#include "models/text/t5_encoder.h"
#include "models/text/text_encoder_source.h"
#include "models/vae/vae.h"
#include "models/vae/vae_config.h"
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

// The outputs under their names, atomically, with what computed them; and the summary line.
void write_outputs(const ForwardOptions& o, const std::vector<std::pair<std::string, HostTensor>>& outputs,
                   const std::string& model, const runtime::Backend& backend, const std::string& summary) {
  std::vector<std::pair<std::string, const HostTensor*>> tensors;
  for (const auto& [name, t] : outputs) tensors.emplace_back(name, &t);
  models::write_host_tensors(o.out, tensors,
                             {{"model", model},
                              {"precision", std::string(runtime::precision_name(backend.precision()))},
                              {"backend", backend.name()}});
  fmt::print("{} -> {}\n", summary, o.out);
}

// Runs `call`, naming the io file in its errors.
template <class Fn>
void on_inputs(const ForwardOptions& o, Fn&& call) {
  try {
    call();
  } catch (const Error& e) {
    fail("{}: {}", o.inputs, e.what());
  }
}

// `in.ids` [B, L] of a text encoder's io file.
const HostTensor& ids_of(const ForwardOptions& o, const runtime::HostTensors& inputs, const std::string& encoder) {
  const auto ids = inputs.find("ids");
  if (ids == inputs.end() || ids->second.shape.size() != 2) fail("{}: no in.ids [B, L] for the {} encoder", o.inputs, encoder);
  return ids->second;
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
  on_inputs(o, [&] {
    if (z != inputs.end()) outputs.emplace_back("decode.out", vae->decode(z->second, sink, models::vae::FramePass::WholeSequence));
    if (pixels != inputs.end()) {
      models::vae::Encoded e = vae->encode(pixels->second, sink);
      outputs.emplace_back("encode.mean", std::move(e.mean));
      outputs.emplace_back("encode.out", std::move(e.latent));
    }
  });
  write_outputs(o, outputs, src.config.name(), *backend,
                fmt::format("{} ({}): {}{}{} in {:.3f} s", src.config.name(), src.config_source,
                            z != inputs.end() ? "decode" : "", z != inputs.end() && pixels != inputs.end() ? " + " : "",
                            pixels != inputs.end() ? "encode" : "", seconds_since(start)));
}

// A T5 or umT5 encoder: `in.ids` [B, L] (and `in.mask` [B, L]); with a mask, `out` and
// `blocks.N.out` masked (Wan's way), and always `out.nomask`, `blocks.N.out.nomask` (Flux's).
void run_t5_forward(const ForwardOptions& o, const models::text::TextEncoderSource& file) {
  const models::text::T5Params& params = file.config.t5;
  const runtime::HostTensors inputs = models::read_host_tensors(o.inputs, "in.");
  const HostTensor& ids = ids_of(o, inputs, params.architecture);
  auto backend = make_backend(o.backend);
  models::text::T5Encoder encoder(params, *backend, *file.weights, o.model);
  std::vector<std::pair<std::string, HostTensor>> outputs;
  const auto start = std::chrono::steady_clock::now();
  const auto run = [&](const std::vector<int64_t>& lengths, const std::string& suffix) {
    HostTensor out = encoder.encode(ids, lengths, [&](const std::string& name, const HostTensor& t) {
      outputs.emplace_back(name + suffix, t);
    });
    outputs.emplace_back("out" + suffix, std::move(out));
  };
  on_inputs(o, [&] {
    if (const auto mask = inputs.find("mask"); mask != inputs.end()) {
      const int64_t b = ids.shape[0], l = ids.shape[1];
      if (mask->second.shape != ids.shape) fail("in.mask {} is not the shape of in.ids", shape_string(mask->second.shape));
      std::vector<int64_t> lengths(size_t(b), 0);
      for (int64_t i = 0; i < b; ++i)
        for (int64_t j = 0; j < l; ++j) lengths[size_t(i)] += mask->second.data[size_t(i * l + j)] != 0.0f;
      run(lengths, "");
    }
    run({}, ".nomask");
  });
  write_outputs(o, outputs, params.architecture, *backend,
                fmt::format("{} encoder ({} layers): {} in {:.3f} s", params.architecture, params.num_layers,
                            shape_string(ids.shape), seconds_since(start)));
}

// CLIP's text tower: `in.ids` [B, L] → `out`, `layers.N.out`, `out.penultimate[.ln]`,
// `pooled` (and `pooled.index`), `pooled.projected`.
void run_clip_text_forward(const ForwardOptions& o, const models::text::TextEncoderSource& file) {
  const models::text::ClipTextParams& params = file.config.clip;
  const runtime::HostTensors inputs = models::read_host_tensors(o.inputs, "in.");
  const HostTensor& ids = ids_of(o, inputs, "CLIP text");
  auto backend = make_backend(o.backend);
  models::text::ClipTextEncoder encoder(params, *backend, *file.weights, o.model);
  std::vector<std::pair<std::string, HostTensor>> outputs;
  const auto start = std::chrono::steady_clock::now();
  models::text::ClipTextOutputs out;
  on_inputs(o, [&] {
    out = encoder.encode(ids, [&](const std::string& name, const HostTensor& t) { outputs.emplace_back(name, t); });
  });
  HostTensor index(Shape{int64_t(out.pooled_index.size())});
  for (size_t i = 0; i < out.pooled_index.size(); ++i) index.data[i] = float(out.pooled_index[i]);
  outputs.emplace_back("out", std::move(out.last));
  outputs.emplace_back("out.penultimate", std::move(out.penultimate));
  outputs.emplace_back("out.penultimate.ln", std::move(out.penultimate_normed));
  outputs.emplace_back("pooled", std::move(out.pooled));
  outputs.emplace_back("pooled.index", std::move(index));
  if (!out.pooled_projected.shape.empty()) outputs.emplace_back("pooled.projected", std::move(out.pooled_projected));
  write_outputs(o, outputs, "clip-text", *backend,
                fmt::format("clip-text encoder ({} layers): {} in {:.3f} s", params.num_layers, shape_string(ids.shape),
                            seconds_since(start)));
}

void run_dit_forward(const ForwardOptions& o) {
  const models::ModelSource src = models::open_model(o.model, o.config);
  const auto network = models::make_network(src.config);
  models::check_weights_present(*network, *src.weights);
  const runtime::HostTensors inputs = models::read_host_tensors(o.inputs, "in.");
  if (inputs.empty()) fail("{}: no 'in.*' tensors", o.inputs);

  auto backend = make_backend(o.backend);
  runtime::WeightStore weights(*backend, *network, [&](const std::string& n) { return src.weights->find(n); });

  std::vector<std::pair<std::string, HostTensor>> outputs;
  const auto start = std::chrono::steady_clock::now();
  on_inputs(o, [&] {
    HostTensor out = runtime::run_model(*backend, *network, weights, inputs, [&](const std::string& name, const HostTensor& t) {
      outputs.emplace_back(name, t);
    });
    outputs.emplace_back("out", std::move(out));
  });
  write_outputs(o, outputs, src.config.variant, *backend,
                fmt::format("{}: {} blocks, out {} in {:.3f} s", src.config.variant, network->blocks().size(),
                            shape_string(outputs.back().second.shape), seconds_since(start)));
}

// What the file is: the sidecar's architecture when one is given, else the tensor names
// (a VAE, a T5 or CLIP text encoder, or a diffusion model).
void run_forward(const ForwardOptions& o) {
  std::optional<nlohmann::json> sidecar;
  std::string architecture;
  if (o.config) {
    sidecar = models::read_json_file(*o.config);
    architecture = sidecar->value("architecture", "");
  }
  if (models::vae::vae_kind_from_name(architecture)) return run_vae_forward(o);
  const bool t5 = architecture == "t5" || architecture == "umt5", clip = architecture == "clip-text";
  if (sidecar && !t5 && !clip) return run_dit_forward(o);
  // Opened once to tell what it is: a text encoder runs from this opening.
  auto checkpoint = std::make_unique<formats::Checkpoint>(o.model);
  auto weights = std::make_unique<quant::WeightSet>(*checkpoint);
  const std::vector<arch::NamedShape> shapes = models::named_shapes(*weights);
  if (t5 || clip || (!sidecar && models::text::text_encoder_architecture(shapes))) {
    const models::text::TextEncoderSource file =
        models::text::open_text_encoder(std::move(checkpoint), std::move(weights), o.config);
    return file.config.is_clip() ? run_clip_text_forward(o, file) : run_t5_forward(o, file);
  }
  if (models::vae::looks_like_vae(shapes)) return run_vae_forward(o);
  run_dit_forward(o);
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
