#include "launcher/picture_output.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "media/mp4_writer.h"
#include "media/pixels.h"
#include "media/png.h"
#include "runtime/core/error.h"
#include "runtime/core/units.h"

namespace ditrun::launcher {

void add_picture_options(CLI::App& cmd, PictureOptions& o, bool with_preview) {
  cmd.add_option("--vae", o.vae, "A VAE (Flux ae.safetensors, Wan 2.1/2.2 VAE): jobs then write <id>.png / <id>.mp4 decoded");
  cmd.add_option("--vae-config", o.vae_config, "A sidecar config JSON for the VAE (when detection cannot place it)");
  if (with_preview) cmd.add_flag("--preview", o.preview, "With --vae, also write the latent preview <id>.preview.png");
  cmd.add_option("--vae-tile", o.vae_tile,
                 "Decode in tiles: auto (when the memory budget needs it), whole, or N latent positions per side")
      ->capture_default_str();
  cmd.add_option("--vae-memory", o.vae_memory, "Memory budget of a decode (default: none on the CPU, the GPU's free memory)");
}

RunVae::RunVae(const PictureOptions& options, BackendOptions backend)
    : path_(options.vae.value_or("")),
      name_(options.vae_name),
      options_(options),
      source_(models::vae::open_vae(path_, options.vae_config)),
      backend_options_(std::move(backend)) {
  if (options_.vae_tile != "auto" && options_.vae_tile != "whole" &&
      (!std::all_of(options_.vae_tile.begin(), options_.vae_tile.end(), ::isdigit) || options_.vae_tile.empty() ||
       options_.vae_tile.size() > 6 || std::stoll(options_.vae_tile) < 8))
    fail("--vae-tile {}: auto, whole, or a number of latent positions of at least 8", options_.vae_tile);
  if (!options_.vae_memory.empty()) parse_bytes(options_.vae_memory, "--vae-memory");
  // The VAE is not part of the DiT's plan: its memory is its own.
  backend_options_.device_memory.clear();
  spdlog::info("VAE {}: {} (config {}), {} latent channels, {}x{} pixels per latent position", path_,
               source_.config.name(), source_.config_source, source_.config.latent_channels(),
               source_.config.spatial_stride(), source_.config.spatial_stride());
}

namespace {
// Qwen-Image's VAE (diffusers AutoencoderKLQwenImage) is Wan 2.1's causal video design with
// Wan 2.1's latent mean and std; the model's images are its single frames.
bool image_model_on_video_vae(const models::vae::VaeConfig& vae, const arch::ModelConfig& model) {
  return model.family == arch::Family::QwenImage && vae.kind == models::vae::VaeKind::Wan21;
}
}  // namespace

std::optional<std::string> vae_mismatch(const models::vae::VaeConfig& vae, const arch::ModelConfig& model) {
  const bool video_model = model.family == arch::Family::Wan;
  const int64_t channels = model.family == arch::Family::Wan ? arch::wan_params(model).out_dim
                           : model.family == arch::Family::Flux ? arch::flux_params(model).out_channels / 4
                                                                : 16;
  if (model.family == arch::Family::QwenImage) {
    if (image_model_on_video_vae(vae, model) && vae.latent_channels() == channels) return std::nullopt;
    return fmt::format("the VAE ({}) is not Qwen-Image's (Wan 2.1's 16-channel design: wan21-vae)", vae.name());
  }
  if (vae.video() == video_model && vae.latent_channels() == channels) return std::nullopt;
  return fmt::format("the VAE ({}) decodes {}-channel {} latents; {} makes {}-channel {} latents", vae.name(),
                     vae.latent_channels(), vae.video() ? "video" : "image", model.variant, channels,
                     video_model ? "video" : "image");
}

RunVae::RunVae(const PictureOptions& options, BackendOptions backend, const arch::ModelConfig& model)
    : RunVae(options, std::move(backend)) {
  if (const auto why = vae_mismatch(source_.config, model)) fail("{}: {}", path_, *why);
  single_frames_ = image_model_on_video_vae(source_.config, model);
  // SD3.5's VAE is the Flux AE's design with its own latent scale and shift: a file whose
  // design was detected from its tensors (the two are alike) decodes SD3 latents with SD3's.
  if (model.family == arch::Family::SD3 && source_.detected && source_.config.kind == models::vae::VaeKind::FluxAE) {
    const models::vae::VaeConfig sd3 = models::vae::vae_preset("sd3.5-vae");
    source_.config.flux.scale_factor = sd3.flux.scale_factor;
    source_.config.flux.shift_factor = sd3.flux.shift_factor;
    spdlog::info("VAE {}: SD3.5's latent scale {} and shift {} (the model is SD3)", path_, sd3.flux.scale_factor,
                 sd3.flux.shift_factor);
  }
}

void RunVae::open_backend() {
  if (backend_) return;
  backend_ = make_backend(backend_options_);
  vae_ = models::vae::make_vae(source_.config, *backend_, *source_.weights, path_);
}

// --vae-memory, else what the device has: a GPU's arena (its free memory); none on the CPU.
uint64_t RunVae::budget_bytes() {
  if (!options_.vae_memory.empty()) return parse_bytes(options_.vae_memory, "--vae-memory");
  open_backend();
  if (backend_->device().kind != DeviceKind::Cuda) return 0;
  // The arena less the kernels' scratch (im2col chunks, GEMM workspace) that the probe on the
  // CPU does not see.
  constexpr uint64_t kScratch = 128ull << 20;
  // The arena is made on first use, from the memory free then: make it now to learn its size.
  if (backend_->memory_stats().limit_bytes == 0) backend_->empty(Shape{1, 1, 1});
  const uint64_t limit = backend_->memory_stats().limit_bytes;
  return limit > kScratch ? limit - kScratch : 1;
}

models::vae::TileGrid RunVae::grid_for(int64_t h, int64_t w) {
  if (options_.vae_tile == "whole") return {};
  if (options_.vae_tile != "auto") {
    const int64_t side = std::stoll(options_.vae_tile);
    if (side >= h && side >= w) return {};
    return {std::min(side, h), std::min(side, w), std::min<int64_t>(8, side / 4)};
  }
  const uint64_t budget = budget_bytes();
  if (budget == 0) return {};
  open_backend();
  return models::vae::tiles_for_budget(footprint(backend_->precision() == runtime::Precision::F32 ? 4 : 2), h, w, budget);
}

models::vae::DecodeFootprint RunVae::footprint(double element_bytes) {
  if (!footprint_f32_) footprint_f32_ = models::vae::measure_decode_footprint(source_, path_, 4);
  models::vae::DecodeFootprint f = *footprint_f32_;
  f.bytes_per_position *= element_bytes / 4.0;
  f.fixed_bytes *= element_bytes / 4.0;
  f.element_bytes = element_bytes;
  return f;
}

HostTensor RunVae::decode(const HostTensor& latent) {
  open_backend();
  Shape batched{1};
  batched.insert(batched.end(), latent.shape.begin(), latent.shape.end());
  if (single_frames_ && latent.shape.size() == 3) batched.insert(batched.begin() + 2, 1);  // [1, C, 1, h, w]
  const int64_t h = latent.shape[latent.shape.size() - 2], w = latent.shape.back();
  const models::vae::TileGrid grid = grid_for(h, w);
  if (!grid.whole())
    spdlog::info("VAE decode of a {}x{} latent in {}{}", w, h, grid.str(),
                 footprint_f32_ ? fmt::format(" (about {} MiB each)",
                                              footprint(backend_->precision() == runtime::Precision::F32 ? 4 : 2)
                                                      .peak_bytes(grid.tile_h, grid.tile_w) >> 20)
                                : "");
  return models::vae::decode_tiled(*vae_, HostTensor(batched, latent.data), grid);
}

HostTensor RunVae::encode_image(const std::string& png_path, std::optional<int64_t> width,
                                std::optional<int64_t> height, int64_t frames) {
  const media::RgbImage image = media::read_png(png_path);
  if ((width && *width != image.width) || (height && *height != image.height))
    fail("{}: the image is {}x{}, the job asks for {}x{} (resize the image or drop width/height)", png_path, image.width,
         image.height, width.value_or(image.width), height.value_or(image.height));
  // The model's patches: 2x2 latent positions (16 pixels for the 8x VAEs).
  const int64_t multiple = source_.config.spatial_stride() * 2;
  if (image.width % multiple || image.height % multiple)
    fail("{}: the image is {}x{}; {} needs multiples of {} pixels", png_path, image.width, image.height,
         source_.config.name(), multiple);
  open_backend();
  HostTensor pixels = media::pixels_from_rgb8(image.rgb, image.width, image.height);
  if (frames > 1) {
    if (!source_.config.video() || (frames - 1) % 4 != 0)
      fail("{}: a {}-frame video from the image needs a video VAE and 4k+1 frames", png_path, frames);
    // [1, 3, frames, H, W]: the image, then zero frames (pixels in [-1, 1]: mid-grey).
    const int64_t plane = image.height * image.width;
    HostTensor video({1, 3, frames, image.height, image.width});
    for (int64_t c = 0; c < 3; ++c)
      std::copy_n(pixels.data.begin() + c * plane, plane, video.data.begin() + c * frames * plane);
    pixels = std::move(video);
  } else if (source_.config.video()) {
    pixels.shape = {1, 3, 1, image.height, image.width};
  }
  HostTensor latent = vae_->encode(pixels).latent;
  latent.shape.erase(latent.shape.begin());  // the batch dim
  if (single_frames_ && frames == 1) latent.shape.erase(latent.shape.begin() + 1);  // an image model's [C, h, w]
  return latent;
}

uint64_t RunVae::device_bytes(const models::JobGeometry& job, double element_bytes) {
  constexpr int64_t kPlannedTile = 64;
  constexpr uint64_t kScratch = 128ull << 20;
  const models::vae::DecodeFootprint f = footprint(element_bytes);
  const int64_t stride = source_.config.spatial_stride();
  const int64_t h = std::min((job.height + stride - 1) / stride, kPlannedTile);
  const int64_t w = std::min((job.width + stride - 1) / stride, kPlannedTile);
  const uint64_t bytes = f.peak_bytes(h, w) + kScratch;
  spdlog::info("VAE {}: {} on rank 0's device ({} of weights, a {}x{}-position decode, kernel scratch)", path_,
               format_bytes(bytes), format_bytes(f.weight_bytes), w, h);
  return bytes;
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
