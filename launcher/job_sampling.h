// One job between its line in a job file and its outputs, whatever runs the network: the
// conditioning read and checked, the starting latent (seeded noise or a noise file), the
// guidance and the sigma schedule; then, once sampled, DIR/<id>.safetensors and DIR/<id>.png.
// The executor samples what it makes (runtime::SamplingJob), so a job means the same thing
// under any rank layout.
#pragma once

#include <string>
#include <vector>

#include "launcher/job_file.h"
#include "models/arch/model_config.h"
#include "models/pipeline/denoiser.h"
#include "runtime/run/sampling_job.h"

namespace ditrun::launcher {

// Fails (ditrun::Error, without a job prefix) when the conditioning or noise cannot be read or
// does not fit the model.
runtime::SamplingJob prepare_job(const Job& job, const arch::ModelConfig& config, const models::Denoiser& denoiser);

// Writes the latent and its preview atomically; on any failure neither exists. Returns the
// file names (relative to out_dir).
std::vector<std::string> write_job_outputs(const std::string& out_dir, const runtime::SamplingJob& job, const HostTensor& latent,
                                           const arch::ModelConfig& config, const std::string& backend_name);

}  // namespace ditrun::launcher
