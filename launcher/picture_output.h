// What a job's final latent becomes besides the latent file. With a VAE (`--vae`): the decoded
// picture, <id>.png for one frame or <id>.mp4 for a video (a job's `output` picks png, mp4 or
// latent), with the job's parameters inside (a PNG tEXt chunk `parameters`, the MP4 `comment`
// tag), and the latent preview only when asked (<id>.preview.png). Without a VAE: the latent
// preview <id>.png, as before.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launcher/backend_options.h"
#include "models/arch/model_config.h"
#include "models/pipeline/job_geometry.h"
#include "models/vae/vae.h"
#include "models/vae/vae_source.h"
#include "models/vae/vae_tiling.h"

namespace ditrun::launcher {

struct PictureOptions {
  std::optional<std::string> vae;         // --vae FILE
  std::optional<std::string> vae_config;  // --vae-config: a sidecar for a VAE detection cannot place
  bool preview = false;                   // --preview: also the latent preview with a VAE
  std::string vae_name;                   // how ledgers and pictures name the VAE ("": its path)
  std::string vae_tile = "auto";          // --vae-tile: auto (from the memory budget), whole, or N latent positions
  std::string vae_memory;                 // --vae-memory: the decode's memory budget ("": the device's)
};

// --vae, --vae-config, --vae-tile, --vae-memory, and --preview where the command lets it be
// chosen (serve always writes the preview its /preview.png serves).
void add_picture_options(CLI::App& cmd, PictureOptions& options, bool with_preview);

// Why a VAE cannot decode `model`'s latents (channels, image or video), or nothing.
std::optional<std::string> vae_mismatch(const models::vae::VaeConfig& vae, const arch::ModelConfig& model);

// The run's VAE: decodes final latents and encodes image inputs, on its own backend (made on first use, from the
// run's backend options without the DiT's memory budget).
class RunVae {
 public:
  // Fails naming the VAE file when it cannot be opened or its latent does not fit the model's
  // (channels, image or video). A VAE whose design was detected from its tensors takes the
  // model's latent constants: SD3.5's scale and shift on the Flux AE's design. Qwen-Image's
  // VAE is Wan 2.1's video design, run on single frames.
  RunVae(const PictureOptions& options, BackendOptions backend, const arch::ModelConfig& model);
  RunVae(const PictureOptions& options, BackendOptions backend);

  const std::string& path() const { return path_; }
  // How ledgers and pictures name the VAE: its path, or PictureOptions::vae_name (the
  // built-in one's, whose path is a temporary folder).
  const std::string& name() const { return name_.empty() ? path_ : name_; }
  const models::vae::VaeConfig& config() const { return source_.config; }
  // latent [C, h, w] or [C, T, h, w] (a job's) → pixels [1, 3, H, W] or [1, 3, F, H, W], in
  // tiles when the whole latent's decode would not fit the budget (--vae-tile, --vae-memory).
  HostTensor decode(const HostTensor& latent);
  // An image (a job's `image`) as a latent of the model's space: [C, h, w] for an image model,
  // [C, 1, h, w] for a video one; with `frames` > 1 (a video VAE) the video of that many
  // frames whose first is the image and the rest zero (mid-grey), as Wan's image-to-video
  // code encodes it: [C, 1 + (frames − 1)/4, h, w]. Fails naming the file when it is not a PNG
  // or not a size the VAE and the model take (`width`/`height`, when given, must be the image's).
  HostTensor encode_image(const std::string& png_path, std::optional<int64_t> width, std::optional<int64_t> height,
                          int64_t frames = 1);
  // How a latent of h×w positions is cut (the footprint is measured on first use).
  models::vae::TileGrid grid_for(int64_t h, int64_t w);
  // What decoding the pictures of `job` takes on a GPU beside the DiT, for the plan to keep
  // out of rank 0's budget: the decoder's weights, a decode's activations (the whole latent,
  // or a 64-position tile when it is larger: the budget then tiles) at `element_bytes`, and
  // 128 MiB of kernel scratch. The footprint is measured once (vae_tiling.h), for this and
  // for the tiles.
  uint64_t device_bytes(const models::JobGeometry& job, double element_bytes);

 private:
  void open_backend();
  uint64_t budget_bytes();
  models::vae::DecodeFootprint footprint(double element_bytes);

  std::string path_, name_;
  PictureOptions options_;
  models::vae::VaeSource source_;
  BackendOptions backend_options_;
  std::optional<models::vae::DecodeFootprint> footprint_f32_;
  std::unique_ptr<runtime::Backend> backend_;
  std::unique_ptr<models::vae::Vae> vae_;
  bool single_frames_ = false;  // an image model's latents [C, h, w] on a video VAE ([C, 1, h, w])
};

// The frame rate a model's videos play at: 24 for Wan 2.2 TI2V-5B, else 16 (Wan 2.1, Wan 2.2 A14B).
double default_fps(const arch::ModelConfig& model);

// Writes DIR/<stem>.png or DIR/<stem>.mp4 from decoded pixels (item 0), picking by `output`
// ("png", "mp4", or "" for png with one frame and mp4 with more); returns the file name.
// `parameters` (JSON text) goes into the file. Fails naming the file.
std::string write_picture(const std::string& dir, const std::string& stem, const HostTensor& pixels,
                          const std::string& output, double fps, const std::string& parameters);

}  // namespace ditrun::launcher
