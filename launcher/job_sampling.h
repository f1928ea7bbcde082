// One job between its line in a job file and its outputs, whatever runs the network: the
// conditioning read and checked, the starting latent (seeded noise or a noise file), the
// guidance and the sigma schedule; then, once sampled, DIR/<id>.safetensors and DIR/<id>.png.
// The executor samples what it makes (runtime::SamplingJob), so a job means the same thing
// under any rank layout.
#pragma once

#include <string>
#include <vector>

#include "launcher/job_file.h"
#include "launcher/ledger.h"
#include "launcher/picture_output.h"
#include "launcher/text_encoders.h"
#include "models/arch/model_config.h"
#include "models/pipeline/denoiser.h"
#include "runtime/run/sampling_job.h"

namespace ditrun::launcher {

// What a job's `image` is to a model:
//   picture       a PNG the run's VAE encodes (image-to-image)
//   conditioning  Wan 2.2 I2V-A14B: a safetensors holding y [20, F, H, W] (4 mask channels,
//                 then the image latent, as WanI2V.generate builds them), beside the latent
//   first_frame   Wan 2.2 TI2V: a safetensors holding image_latent [48, 1, H, W], the video's
//                 first latent frame, held fixed at t = 0
enum class ImageUse { picture, conditioning, first_frame };
ImageUse image_use(const arch::ModelConfig& config);

// Fails (ditrun::Error, without a job prefix) when the conditioning, noise or image cannot be
// read or does not fit the model. `vae` encodes a job's `image` (none: such a job fails);
// `encoders` its `prompt` (none: such a job fails).
runtime::SamplingJob prepare_job(const Job& job, const arch::ModelConfig& config, const models::Denoiser& denoiser,
                                 RunVae* vae = nullptr, RunEncoders* encoders = nullptr);
// What prepare_job checks before anything runs (a server answering a submission), without a
// VAE and without encoding a prompt (that waits for the job's turn).
void check_job(const Job& job, const arch::ModelConfig& config, const models::Denoiser& denoiser);

// How a job's final latent becomes pictures (picture_output.h): the run's VAE (none: the
// latent preview is the picture) and the job's own choices.
struct JobPictures {
  RunVae* decoder = nullptr;
  bool preview = false;     // with a VAE, also <id>.preview.png
  std::string output;       // the job's `output` ("" = by frame count)
  std::optional<double> fps;
};

// Writes the latent, then the picture (decoded, or the latent preview), each atomically.
// Without a VAE, a failure leaves neither (as before); with one, the latent stays when
// decoding or writing the picture fails, and the error says how to finish the job.
// Returns the file names (relative to out_dir).
std::vector<std::string> write_job_outputs(const std::string& out_dir, const runtime::SamplingJob& job, const HostTensor& latent,
                                           const arch::ModelConfig& config, const std::string& backend_name,
                                           const JobPictures& pictures = {});

// --resume with a VAE: a job whose latent DIR/<id>.safetensors was written by a run of this
// job (its metadata names the job, model, seed and steps) but whose picture was not, is
// finished by decoding that latent: the picture is written and the ledger entry returned
// (done). Nothing when the job has no such latent. Fails when decoding or writing fails.
std::optional<LedgerEntry> finish_from_latent(const std::string& out_dir, const Job& job,
                                              const arch::ModelConfig& config, RunVae& vae, bool preview);

// The job's parameters as the JSON text stored in its pictures (and shown by `decode`).
std::string job_parameters(const runtime::SamplingJob& job, const arch::ModelConfig& config, const std::string& vae);

}  // namespace ditrun::launcher
