#include "launcher/picture_output.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "media/mp4_writer.h"
#include "media/pixels.h"
#include "media/png.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {

void add_picture_options(CLI::App& cmd, PictureOptions& o) {
  cmd.add_option("--vae", o.vae, "A VAE (Flux ae.safetensors, Wan 2.1/2.2 VAE): jobs then write <id>.png / <id>.mp4 decoded");
  cmd.add_option("--vae-config", o.vae_config, "A sidecar config JSON for the VAE (when detection cannot place it)");
  cmd.add_flag("--preview", o.preview, "With --vae, also write the latent preview <id>.preview.png");
}

LatentDecoder::LatentDecoder(const std::string& vae_path, const std::optional<std::string>& vae_config,
                             BackendOptions backend)
    : path_(vae_path), source_(models::vae::open_vae(vae_path, vae_config)), backend_options_(std::move(backend)) {
  // The VAE is not part of the DiT's plan: its memory is its own.
  backend_options_.device_memory.clear();
  spdlog::info("VAE {}: {} (config {}), {} latent channels, {}x{} pixels per latent position", vae_path,
               source_.config.name(), source_.config_source, source_.config.latent_channels(),
               source_.config.spatial_stride(), source_.config.spatial_stride());
}

LatentDecoder::LatentDecoder(const std::string& vae_path, const std::optional<std::string>& vae_config,
                             BackendOptions backend, const arch::ModelConfig& model)
    : LatentDecoder(vae_path, vae_config, std::move(backend)) {
  const bool video_model = model.family == arch::Family::Wan;
  const int64_t channels = model.family == arch::Family::Wan ? arch::wan_params(model).out_dim
                           : model.family == arch::Family::Flux ? arch::flux_params(model).out_channels / 4
                                                                : 16;
  if (source_.config.video() != video_model || source_.config.latent_channels() != channels)
    fail("{}: the VAE ({}) decodes {}-channel {} latents; {} makes {}-channel {} latents", vae_path,
         source_.config.name(), source_.config.latent_channels(), source_.config.video() ? "video" : "image",
         model.variant, channels, video_model ? "video" : "image");
}

HostTensor LatentDecoder::decode(const HostTensor& latent) {
  if (!backend_) {
    backend_ = make_backend(backend_options_);
    vae_ = models::vae::make_vae(source_.config, *backend_, *source_.weights, path_);
  }
  Shape batched{1};
  batched.insert(batched.end(), latent.shape.begin(), latent.shape.end());
  return vae_->decode(HostTensor(batched, latent.data));
}

double default_fps(const arch::ModelConfig& model) {
  if (model.family == arch::Family::Wan && arch::wan_params(model).model_type == "ti2v") return 24;
  return 16;
}

std::string write_picture(const std::string& dir, const std::string& stem, const HostTensor& pixels,
                          const std::string& output, double fps, const std::string& parameters) {
  const bool video = pixels.shape.size() == 5;
  const int64_t frames = video ? pixels.shape[2] : 1;
  const int height = int(pixels.shape[video ? 3 : 2]), width = int(pixels.shape[video ? 4 : 3]);
  const std::string kind = output.empty() ? (frames > 1 ? "mp4" : "png") : output;
  const std::string name = stem + "." + kind;
  const std::string path = (std::filesystem::path(dir) / name).string();
  if (kind == "png") {
    if (frames != 1) fail("{}: {} frames do not fit a PNG (output mp4 does)", path, frames);
    const std::vector<media::PngText> text{{"parameters", parameters}, {"Software", "ditrun"}};
    media::write_png_rgb(path, media::rgb8_frame(pixels, 0, 0), width, height, text);
  } else if (kind == "mp4") {
    std::vector<std::vector<uint8_t>> rgb;
    for (int64_t t = 0; t < frames; ++t) rgb.push_back(media::rgb8_frame(pixels, 0, t));
    media::write_mp4_rgb(path, rgb, width, height, {.fps = fps, .comment = parameters});
  } else {
    fail("{}: output '{}' is not png or mp4", path, kind);
  }
  return name;
}

}  // namespace ditrun::launcher
