#include "launcher/serve_api.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "launcher/job_sampling.h"
#include "runtime/core/atomic_file.h"
#include "runtime/core/error.h"
#include "server/base64.h"

namespace ditrun::launcher {
namespace {

using nlohmann::json;
using server::Request;
using server::Response;

// Keys of a submitted job that are the service's, not the job line's.
constexpr const char* kCondUpload = "cond_b64";
constexpr const char* kNoiseUpload = "noise_b64";

std::string random_hex(size_t digits) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  while (out.size() < digits) out += fmt::format("{:016x}", rng());
  out.resize(digits);
  return out;
}

// Ids name files, so only ids the job rules allow can name a job in a URL.
bool plausible_id(std::string_view id) {
  if (id.empty() || id.size() > 200 || id.front() == '.') return false;
  for (char c : id)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

std::string query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (const size_t eq = pair.find('='); eq != std::string_view::npos && pair.substr(0, eq) == key)
      return std::string(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return "";
}

Response method_not_allowed(const std::string& method, const std::string& path, const std::string& allowed) {
  Response r = Response::error(405, fmt::format("{} is not allowed on {} (allowed: {})", method, path, allowed));
  r.headers.emplace_back("Allow", allowed);
  return r;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Prometheus text format: one HELP/TYPE header per family, then its samples.
class MetricsText {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(std::string_view name, double value, std::string_view labels = "") {
    text_ += labels.empty() ? fmt::format("{} {}\n", name, value) : fmt::format("{}{{{}}} {}\n", name, labels, value);
  }
  void histogram(std::string_view name, std::string_view help, const TimeHistogram& h) {
    family(name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.bounds.size(); ++i) {
      cumulative += h.counts[i];
      sample(fmt::format("{}_bucket", name), double(cumulative), fmt::format("le=\"{}\"", h.bounds[i]));
    }
    sample(fmt::format("{}_bucket", name), double(h.count), "le=\"+Inf\"");
    sample(fmt::format("{}_sum", name), h.sum);
    sample(fmt::format("{}_count", name), double(h.count));
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

}  // namespace

json status_to_json(const JobStatus& s, bool decodes) {
  json j = {{"id", s.id}, {"status", to_string(s.state)}, {"submitted_at", s.submitted_at}};
  if (s.state == JobState::queued) j["position"] = s.position;
  j["progress"] = {{"step", s.step}, {"steps", s.steps},
                   {"fraction", s.steps > 0 ? double(s.step) / s.steps : 0.0}};
  if (!s.started_at.empty()) j["started_at"] = s.started_at;
  if (!s.finished_at.empty()) j["finished_at"] = s.finished_at;
  if (!s.where.empty()) j["where"] = s.where;
  if (s.state != JobState::queued && s.state != JobState::cancelled) {
    j["seconds"] = s.seconds;
    j["seconds_per_step"] = s.seconds_per_step;
  }
  if (s.state == JobState::running && s.step > 0) j["eta_seconds"] = s.seconds_per_step * (s.steps - s.step);
  if (s.state == JobState::failed) j["error"] = s.error;
  if (s.state == JobState::done) {
    j["outputs"] = s.outputs;
    j["latent"] = fmt::format("/v1/jobs/{}/latent", s.id);
    const auto has = [&](const std::string& suffix) {
      return std::find(s.outputs.begin(), s.outputs.end(), s.id + suffix) != s.outputs.end();
    };
    // With a VAE, <id>.png is the decoded picture and the preview is <id>.preview.png.
    const bool decoded = decodes;
    if (decoded && has(".png")) j["image"] = fmt::format("/v1/jobs/{}/image", s.id);
    if (has(".mp4")) j["video"] = fmt::format("/v1/jobs/{}/video", s.id);
    if (has(".preview.png") || (!decoded && has(".png"))) j["preview"] = fmt::format("/v1/jobs/{}/preview.png", s.id);
  }
  j["job"] = s.job;
  return j;
}

ServeApi::ServeApi(JobBoard& board, const server::PathRoots& roots, const arch::ModelConfig& config,
                   ServeSettings settings)
    : board_(board),
      roots_(roots),
      config_(config),
      denoiser_(models::make_denoiser(config)),
      settings_(std::move(settings)) {
  std::filesystem::create_directories(std::filesystem::path(settings_.out_dir) / "uploads");
}

void ServeApi::set_ready(const std::string& plan_summary) {
  {
    std::lock_guard lock(summary_mutex_);
    plan_summary_ = plan_summary;
  }
  ready_ = true;
}

Response ServeApi::handle(const Request& request) {
  const std::string& path = request.path;
  const std::string& method = request.method;
  if (path == "/v1/health") return method == "GET" ? health() : method_not_allowed(method, path, "GET");
  if (path == "/metrics") return method == "GET" ? metrics() : method_not_allowed(method, path, "GET");
  if (path == "/v1/jobs" || path == "/v1/jobs/") {
    if (method == "POST") return submit(request);
    if (method == "GET") return list(request);
    return method_not_allowed(method, path, "GET, POST");
  }
  if (path.starts_with("/v1/jobs/")) {
    std::string id = path.substr(9), file;
    if (const size_t slash = id.find('/'); slash != std::string::npos) {
      file = id.substr(slash + 1);
      id.resize(slash);
    }
    if (!plausible_id(id)) return Response::error(404, fmt::format("no job '{}'", id.substr(0, 200)));
    if (file.empty()) {
      if (method == "GET") return job_status(id);
      if (method == "DELETE") return cancel(id);
      return method_not_allowed(method, path, "GET, DELETE");
    }
    if (file == "latent" || file == "preview.png" || file == "image" || file == "video") {
      if (method != "GET") return method_not_allowed(method, path, "GET");
      if (file == "latent") return job_file(id, ".safetensors", "application/octet-stream");
      if (file == "video") return job_file(id, ".mp4", "video/mp4");
      if (file == "image") {
        if (!settings_.decodes) return Response::error(404, fmt::format("job '{}' has no decoded image: the server runs without --vae", id));
        return job_file(id, ".png", "image/png");
      }
      return job_file(id, settings_.decodes ? ".preview.png" : ".png", "image/png");
    }
  }
  return Response::error(404, fmt::format("no such endpoint: {} {}", method, path.substr(0, 200)));
}

std::string ServeApi::store_upload(const std::string& job_id, const std::string& what, const std::string& base64) {
  const std::optional<std::string> bytes = server::base64_decode(base64);
  if (!bytes) fail("{}_b64: not valid base64", what);
  // A random part keeps two submissions of one id (one of which will be refused) apart.
  const std::string path = (std::filesystem::path(settings_.out_dir) / "uploads" /
                            fmt::format("{}-{}.{}.safetensors", job_id, random_hex(8), what))
                               .string();
  AtomicFile file(path);  // synced before the rename: the queued ledger line will name it
  file.write(bytes->data(), bytes->size());
  file.commit();
  return path;
}

Response ServeApi::submit(const Request& request) {
  json body;
  try {
    body = parse_strict_object(request.body);
  } catch (const Error& e) {
    return Response::error(400, fmt::format("job: {}", e.what()));
  }
  if (!body.contains("id")) body["id"] = "job-" + random_hex(16);
  const std::string id = body["id"].is_string() ? body["id"].get<std::string>() : "";
  const std::string job_name = id.empty() ? "job" : fmt::format("job '{}'", id.substr(0, 200));
  if (body.contains("config"))
    return Response::error(422, fmt::format("{}: config: a server runs one model with one config; jobs cannot bring "
                                            "their own",
                                            job_name));
  if (!plausible_id(id)) {
    try {  // validate_job's message says what is wrong with the id
      parse_job_object(body, "");
    } catch (const Error& e) {
      return Response::error(422, fmt::format("job: {}", e.what()));
    }
    return Response::error(422, "job: id: not a valid id");
  }

  // Uploads stored for this request are removed on every way out but acceptance.
  struct StoredUploads {
    std::vector<std::string> paths;
    bool keep = false;
    ~StoredUploads() {
      if (keep) return;
      for (const std::string& p : paths) {
        std::error_code ec;
        std::filesystem::remove(p, ec);
      }
    }
  } stored;
  std::vector<std::string>& uploads = stored.paths;
  Job job;
  try {
    for (const auto& [key, upload] : {std::pair{"cond", kCondUpload}, std::pair{"noise", kNoiseUpload}}) {
      const bool inline_given = body.contains(upload), path_given = body.contains(key);
      if (inline_given && path_given)
        return Response::error(422, fmt::format("{}: give {} or {}, not both", job_name, key, upload));
      if (inline_given) {
        if (!body[upload].is_string())
          return Response::error(422, fmt::format("{}: {}: must be a base64 string", job_name, upload));
        uploads.push_back(store_upload(id, key, body[upload].get<std::string>()));
        body[key] = uploads.back();
        body.erase(upload);
      } else if (path_given && body[key].is_string()) {
        try {
          body[key] = roots_.resolve(body[key].get<std::string>());
        } catch (const Error& e) {
          return Response::error(403, fmt::format("{}: {}: {}", job_name, key, e.what()));
        }
      }
    }
    // A job's image (an image-to-video job's is read when the job is checked) is confined to
    // the allowed roots too; it has no upload form. (A job's own config is refused above.)
    if (body.contains("image") && body["image"].is_string()) {
      try {
        body["image"] = roots_.resolve(body["image"].get<std::string>());
      } catch (const Error& e) {
        return Response::error(403, fmt::format("{}: image: {}", job_name, e.what()));
      }
    }
    if (!body.contains("cond") && !body.contains("prompt") && settings_.default_cond) body["cond"] = *settings_.default_cond;
    job = parse_job_object(body, "");
    if (job.prompt && !settings_.encodes)
      fail("prompt: the server runs without text encoders (start it with --t5 and --clip, --text-encoder, or --models)");
    // Read and check everything the job needs now, so a client hears of a bad job at once
    // instead of finding it failed later. It is prepared again when it runs.
    check_job(job, config_, *denoiser_);
  } catch (const Error& e) {
    // The client knows its upload by the key it sent, not by the server's file name.
    std::string message = e.what();
    for (const std::string& p : uploads)
      for (size_t at; (at = message.find(p)) != std::string::npos;)
        message.replace(at, p.size(), p.ends_with(".cond.safetensors") ? "the uploaded cond" : "the uploaded noise");
    return Response::error(422, fmt::format("{}: {}", job_name, message));
  }

  JobBoard::SubmitResult result;
  try {
    result = board_.submit(job);
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return Response::error(500, fmt::format("{}: not queued: {}", job_name, e.what()));
  }
  switch (result.outcome) {
    case JobBoard::Submitted::accepted: {
      stored.keep = true;
      spdlog::info("job '{}' queued (position {})", id, result.position);
      Response r = Response::json(201, {{"id", id}, {"status", "queued"}, {"position", result.position},
                                        {"url", fmt::format("/v1/jobs/{}", id)}});
      r.headers.emplace_back("Location", fmt::format("/v1/jobs/{}", id));
      return r;
    }
    case JobBoard::Submitted::duplicate_id:
      return Response::error(409, fmt::format("{}: the id is taken (ids are unique over the ledger in {})", job_name,
                                              settings_.out_dir));
    case JobBoard::Submitted::queue_full: {
      Response r = Response::error(429, fmt::format("{}: the queue is full ({} jobs waiting); retry later", job_name,
                                                    board_.counters().queued));
      r.headers.emplace_back("Retry-After", "5");
      return r;
    }
    case JobBoard::Submitted::draining:
      return Response::error(503, fmt::format("{}: the server is shutting down and takes no new jobs", job_name));
  }
  return Response::error(500, "unreachable");
}

Response ServeApi::job_status(const std::string& id) {
  const std::optional<JobStatus> s = board_.status(id);
  if (!s) return Response::error(404, fmt::format("no job '{}'", id));
  return Response::json(200, status_to_json(*s, settings_.decodes));
}

Response ServeApi::job_file(const std::string& id, const std::string& suffix, const std::string& content_type) {
  const std::optional<JobStatus> s = board_.status(id);
  if (!s) return Response::error(404, fmt::format("no job '{}'", id));
  if (s->state != JobState::done)
    return Response::error(409, fmt::format("job '{}' is {}; its outputs exist once it is done", id, to_string(s->state)));
  const std::string name = id + suffix;
  if (std::find(s->outputs.begin(), s->outputs.end(), name) == s->outputs.end())
    return Response::error(404, fmt::format("job '{}' has no {}", id, name));
  const std::string path = (std::filesystem::path(settings_.out_dir) / name).string();
  Response r;
  r.content_type = content_type;
  try {
    r.body = read_file(path);
  } catch (const Error&) {
    return Response::error(410, fmt::format("job '{}': {} is gone from {}", id, name, settings_.out_dir));
  }
  r.headers.emplace_back("Content-Disposition", fmt::format("attachment; filename=\"{}\"", name));
  return r;
}

Response ServeApi::cancel(const std::string& id) {
  JobState state = JobState::queued;
  switch (board_.cancel(id, &state)) {
    case JobBoard::Cancelled::cancelled:
      spdlog::info("job '{}' cancelled", id);
      return Response::json(200, {{"id", id}, {"status", "cancelled"}});
    case JobBoard::Cancelled::unknown:
      return Response::error(404, fmt::format("no job '{}'", id));
    case JobBoard::Cancelled::not_queued:
      return Response::error(409, fmt::format("job '{}' is {}; only a queued job can be cancelled", id, to_string(state)));
  }
  return Response::error(500, "unreachable");
}

Response ServeApi::list(const Request& request) {
  std::optional<JobState> state;
  if (const std::string s = query_value(request.query, "state"); !s.empty()) {
    for (JobState candidate : {JobState::queued, JobState::running, JobState::done, JobState::failed, JobState::cancelled})
      if (to_string(candidate) == s) state = candidate;
    if (!state)
      return Response::error(400, fmt::format("state '{}': use queued, running, done, failed or cancelled", s.substr(0, 50)));
  }
  size_t limit = 100;
  if (const std::string l = query_value(request.query, "limit"); !l.empty()) {
    size_t parsed = 0;
    const auto [end, ec] = std::from_chars(l.data(), l.data() + l.size(), parsed);
    if (ec != std::errc() || end != l.data() + l.size() || parsed == 0 || parsed > 10000)
      return Response::error(400, fmt::format("limit '{}': use a number from 1 to 10000", l.substr(0, 50)));
    limit = parsed;
  }
  json jobs = json::array();
  for (const JobStatus& s : board_.list(state, limit)) jobs.push_back(status_to_json(s, settings_.decodes));
  return Response::json(200, {{"jobs", jobs}});
}

Response ServeApi::health() {
  const BoardCounters c = board_.counters();
  const std::string status = board_.draining() ? "draining" : ready_ ? "ready" : "loading";
  json j = {{"status", status},
            {"model", settings_.model},
            {"family", std::string(arch::family_name(config_.family))},
            {"ranks", settings_.ranks},
            {"queued", c.queued},
            {"running", c.running},
            {"uptime_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count()}};
  {
    std::lock_guard lock(summary_mutex_);
    if (!plan_summary_.empty()) j["plan"] = plan_summary_;
  }
  return Response::json(status == "ready" ? 200 : 503, j);
}

Response ServeApi::metrics() {
  const BoardCounters c = board_.counters();
  MetricsText m;
  m.family("ditrun_ready", "gauge", "1 once the model is loaded and jobs run; 0 while loading or draining.");
  m.sample("ditrun_ready", ready_ && !board_.draining() ? 1 : 0);
  m.family("ditrun_uptime_seconds", "gauge", "Seconds since the server started.");
  m.sample("ditrun_uptime_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  m.family("ditrun_queue_depth", "gauge", "Jobs waiting to start.");
  m.sample("ditrun_queue_depth", double(c.queued));
  m.family("ditrun_jobs_running", "gauge", "Jobs being rendered now.");
  m.sample("ditrun_jobs_running", double(c.running));
  m.family("ditrun_jobs_submitted_total", "counter", "Jobs accepted since the server started.");
  m.sample("ditrun_jobs_submitted_total", double(c.submitted));
  m.family("ditrun_jobs_resumed", "gauge", "Jobs queued again from the ledger when the server started.");
  m.sample("ditrun_jobs_resumed", double(c.resumed));
  m.family("ditrun_jobs_finished_total", "counter", "Jobs over since the server started, by outcome.");
  m.sample("ditrun_jobs_finished_total", double(c.done), "status=\"done\"");
  m.sample("ditrun_jobs_finished_total", double(c.failed), "status=\"failed\"");
  m.sample("ditrun_jobs_finished_total", double(c.cancelled), "status=\"cancelled\"");
  m.family("ditrun_jobs_rejected_total", "counter", "Submissions refused because the queue was full.");
  m.sample("ditrun_jobs_rejected_total", double(c.rejected_full), "reason=\"queue_full\"");
  m.histogram("ditrun_step_seconds", "Wall time of one sampler step of one job.", c.step_seconds);
  m.histogram("ditrun_job_seconds", "Wall time of a finished job, from start to outputs written.", c.job_seconds);
  m.family("ditrun_device_memory_bytes", "gauge", "Device memory of each rank as its last step saw it.");
  for (const auto& [rank, stats] : c.device_memory.items()) {
    const std::string device = stats.value("device", "");
    for (const char* kind : {"limit", "in_use", "peak"})
      m.sample("ditrun_device_memory_bytes", stats.value(kind, 0.0),
               fmt::format("rank=\"{}\",device=\"{}\",kind=\"{}\"", rank, device, kind));
  }
  if (http_stats_) {
    const json h = http_stats_();
    m.family("ditrun_http_requests_total", "counter", "HTTP requests answered.");
    m.sample("ditrun_http_requests_total", h.value("requests", 0.0));
    m.family("ditrun_http_errors_total", "counter", "HTTP error responses, by class.");
    m.sample("ditrun_http_errors_total", h.value("errors_4xx", 0.0), "class=\"4xx\"");
    m.sample("ditrun_http_errors_total", h.value("errors_5xx", 0.0), "class=\"5xx\"");
    m.family("ditrun_http_connections_open", "gauge", "Open HTTP connections.");
    m.sample("ditrun_http_connections_open", h.value("open_connections", 0.0));
    m.family("ditrun_http_connections_rejected_total", "counter", "Connections refused over the connection limit.");
    m.sample("ditrun_http_connections_rejected_total", h.value("rejected_connections", 0.0));
  }
  Response r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = m.text();
  return r;
}

}  // namespace ditrun::launcher
