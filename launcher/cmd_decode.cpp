// `ditrun decode VAE LATENT.safetensors --out X.png|X.mp4`: decodes a latent written earlier
// (by `run`, `serve`, or another tool: tensor `latent`, [C, h, w] or [C, T, h, w]) into a
// picture or video. When the latent lies in a run folder whose ledger knows its job, a `done`
// line with the decoded file and the VAE is appended: a job whose decoding failed is finished.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "launcher/backend_options.h"
#include "launcher/commands.h"
#include "launcher/ledger.h"
#include "launcher/picture_output.h"
#include "models/formats/checkpoint.h"
#include "models/pipeline/tensor_files.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

struct DecodeOptions {
  std::string vae, latent, out;
  PictureOptions pictures;
  std::optional<double> fps;
  BackendOptions backend;
};

void decode(const DecodeOptions& o) {
  const std::string kind = std::filesystem::path(o.out).extension().string();
  if (kind != ".png" && kind != ".mp4") fail("--out {}: the file name must end in .png or .mp4", o.out);
  const runtime::HostTensors tensors = models::read_host_tensors(o.latent);
  const auto it = tensors.size() == 1 ? tensors.begin() : tensors.find("latent");
  if (it == tensors.end()) fail("{}: no tensor 'latent' (and more than one tensor)", o.latent);
  const HostTensor& latent = it->second;
  const std::map<std::string, std::string> metadata = formats::Checkpoint(o.latent).safetensors_metadata();

  RunVae decoder(o.pictures, o.backend);
  const auto& vae = decoder.config();
  const size_t rank = vae.video() ? 4 : 3;
  if (latent.shape.size() != rank || latent.shape[0] != vae.latent_channels())
    fail("{}: latent {} does not fit the VAE {} ({}: [{}, {}h, w])", o.latent, shape_string(latent.shape), o.vae,
         vae.name(), vae.latent_channels(), vae.video() ? "T, " : "");
  const auto start = std::chrono::steady_clock::now();
  const HostTensor pixels = decoder.decode(latent);

  nlohmann::json parameters(metadata);
  parameters["vae"] = o.vae;
  const auto model = metadata.find("model");
  const double fps = o.fps.value_or(model != metadata.end() && model->second.find("ti2v") != std::string::npos ? 24 : 16);
  const std::filesystem::path out(o.out);
  const std::string dir = out.parent_path().empty() ? "." : out.parent_path().string();
  const std::string name = write_picture(dir, out.stem().string(), pixels, kind.substr(1), fps, parameters.dump());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{}: {} {} -> {} in {:.2f} s\n", o.latent, vae.name(), shape_string(pixels.shape), o.out, seconds);

  // The job's ledger, when the latent and the picture are in its folder.
  const std::filesystem::path latent_path(o.latent);
  const std::string run_dir = latent_path.parent_path().empty() ? "." : latent_path.parent_path().string();
  const auto id = metadata.find("id");
  std::error_code ec;
  if (id != metadata.end() && std::filesystem::exists(ledger_path(run_dir)) &&
      std::filesystem::equivalent(run_dir, dir, ec)) {
    LedgerEntry entry;
    entry.id = id->second;
    entry.status = LedgerStatus::done;
    entry.seconds = seconds;
    entry.outputs = {latent_path.filename().string(), name};
    entry.vae = o.vae;
    append_ledger(run_dir, entry);
    spdlog::info("job '{}' recorded done in {}", entry.id, ledger_path(run_dir));
  }
}

}  // namespace

void add_decode_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("decode", "Decode a latent written earlier into a PNG or an MP4 with a VAE");
  static DecodeOptions o;
  cmd->add_option("vae", o.vae, "The VAE (.safetensors or .gguf)")->required();
  cmd->add_option("latent", o.latent, "A latent .safetensors (tensor 'latent')")->required();
  cmd->add_option("--out", o.out, "X.png or X.mp4")->required();
  cmd->add_option("--vae-config", o.pictures.vae_config, "A sidecar config JSON for the VAE");
  cmd->add_option("--vae-tile", o.pictures.vae_tile, "auto, whole, or N latent positions per tile side")->capture_default_str();
  cmd->add_option("--vae-memory", o.pictures.vae_memory, "Memory budget of the decode (default: none on the CPU, the GPU's free memory)");
  cmd->add_option("--fps", o.fps, "MP4 frame rate (default: the model's, from the latent's metadata)");
  add_backend_options(*cmd, o.backend);
  cmd->callback([] {
    o.pictures.vae = o.vae;
    decode(o);
  });
}

}  // namespace ditrun::launcher
