// One job between its line in a job file and its outputs, whatever runs the network: the
// conditioning read and checked, the starting latent (seeded noise or a noise file), the
// guidance and the sigma schedule; then, once sampled, DIR/<id>.safetensors and DIR/<id>.png.
// The single-process runner and the distributed coordinator both use it, so a job means the
// same thing under any rank layout.
#pragma once

#include <string>
#include <vector>

#include "launcher/job_file.h"
#include "models/arch/model_config.h"
#include "models/pipeline/denoiser.h"
#include "runtime/sampling/schedule.h"
#include "transport/tensor_message.h"

namespace ditrun::launcher {

struct PreparedJob {
  Job job;
  models::Conditioning cond;
  models::GuidanceSettings guidance;
  HostTensor x;                // the starting latent
  runtime::Shift shift;
  std::vector<double> sigmas;  // steps + 1 values, the last 0
  int steps() const { return int(sigmas.size()) - 1; }
};

// Fails (ditrun::Error, without a job prefix) when the conditioning or noise cannot be read or
// does not fit the model.
PreparedJob prepare_job(const Job& job, const arch::ModelConfig& config, const models::Denoiser& denoiser);

// Writes the latent and its preview atomically; on any failure neither exists. Returns the
// file names (relative to out_dir).
std::vector<std::string> write_job_outputs(const std::string& out_dir, const PreparedJob& job, const HostTensor& latent,
                                           const arch::ModelConfig& config, const std::string& backend_name);

// A prepared job as a message (for the rank that runs it) and back; the schedule travels
// exactly (JSON doubles round-trip), the conditioning under "cond/<name>", the latent as "x".
void put_job(const PreparedJob& job, transport::TensorMessage& message);
PreparedJob take_job(transport::TensorMessage& message);

}  // namespace ditrun::launcher
