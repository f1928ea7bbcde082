// The HTTP API of `ditrun serve`, as a function from request to response, free of sockets so
// tests can drive it directly (the server itself is server/http_server.h):
//
//   POST   /v1/jobs                  a job in the job line format (launcher/job_file.h); the
//                                    conditioning by server-side path under an allowed root
//                                    ("cond"), or uploaded inline as a base64 safetensors file
//                                    ("cond_b64"; likewise "noise" / "noise_b64"). "id" may be
//                                    left out (one is made). The job is checked against the
//                                    model before it is accepted: 201, or 400/403/409/422/429/503.
//   GET    /v1/jobs[?state=S&limit=N] the newest jobs first
//   GET    /v1/jobs/{id}             status, progress, timings, error
//   GET    /v1/jobs/{id}/latent      DIR/<id>.safetensors once done
//   GET    /v1/jobs/{id}/preview.png DIR/<id>.png once done
//   DELETE /v1/jobs/{id}             cancels a job that has not started (409 once it has)
//   GET    /v1/health                200 when ready; 503 while loading or draining
//   GET    /metrics                  Prometheus text format
//
// Every error is JSON {"error": "one line", "status": N}.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "launcher/job_board.h"
#include "models/arch/model_config.h"
#include "models/pipeline/denoiser.h"
#include "server/http_message.h"
#include "server/path_roots.h"

namespace ditrun::launcher {

struct ServeSettings {
  std::string out_dir;                     // outputs, ledger, uploads/
  std::string model;                       // for /v1/health
  std::optional<std::string> default_cond; // the built-in model's prompt, for jobs without one
  int ranks = 1;
  bool decodes = false;  // a VAE decodes final latents: <id>.png is the picture, the preview <id>.preview.png
  bool encodes = false;  // text encoders turn jobs' prompts into conditioning
};

class ServeApi {
 public:
  ServeApi(JobBoard& board, const server::PathRoots& roots, const arch::ModelConfig& config, ServeSettings settings);

  server::Response handle(const server::Request& request);

  // What the service is doing, for /v1/health and /metrics: loading the model, ready, or
  // draining (finishing running jobs, taking no new ones).
  void set_ready(const std::string& plan_summary);
  // The HTTP layer's own counters, for /metrics.
  void set_http_stats(std::function<nlohmann::json()> stats) { http_stats_ = std::move(stats); }

 private:
  server::Response submit(const server::Request& request);
  server::Response job_status(const std::string& id);
  server::Response job_file(const std::string& id, const std::string& suffix, const std::string& content_type);
  server::Response cancel(const std::string& id);
  server::Response list(const server::Request& request);
  server::Response health();
  server::Response metrics();
  // A base64 safetensors upload written to DIR/uploads (atomically); returns its path.
  std::string store_upload(const std::string& job_id, const std::string& what, const std::string& base64);

  JobBoard& board_;
  const server::PathRoots& roots_;
  arch::ModelConfig config_;
  std::unique_ptr<models::Denoiser> denoiser_;
  ServeSettings settings_;
  std::atomic<bool> ready_{false};
  std::string plan_summary_;
  std::mutex summary_mutex_;
  std::function<nlohmann::json()> http_stats_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// The JSON a client gets for a job.
nlohmann::json status_to_json(const JobStatus& status, bool decodes);

}  // namespace ditrun::launcher
