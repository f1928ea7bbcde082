// `[mpirun -np N] ditrun serve [MODEL] --out DIR [--listen HOST:PORT] [--token T]`: a render
// service. Rank 0 answers HTTP (launcher/serve_api.h) on its own threads while the model is
// loaded once and every rank renders, through the same coordinator and stage workers as
// `ditrun run` (replicas, pipelines). Jobs, outputs and the ledger live in DIR, so a server
// started again on DIR resumes the queue it had. Without MODEL, the built-in tiny Flux serves.
//
// Stopping: SIGINT (or SIGTERM without mpirun) drains: no new jobs, running ones finish,
// queued ones stay queued in the ledger for the next start. A second signal exits at once
// (jobs that were running are queued again at the next start).
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "launcher/abort_report.h"
#include "launcher/backend_options.h"
#include "launcher/builtin_model.h"
#include "launcher/commands.h"
#include "launcher/distributed_run.h"
#include "launcher/models_dir.h"
#include "launcher/job_board.h"
#include "launcher/planning.h"
#include "launcher/serve_api.h"
#include "models/pipeline/model_files.h"
#include "partition/plan.h"
#include "runtime/core/units.h"
#include "runtime/core/atomic_file.h"
#include "runtime/core/error.h"
#include "server/http_server.h"
#include "server/listen_address.h"
#include "server/path_roots.h"
#include "transport/device_link.h"
#include "transport/local_channel.h"
#include "transport/mpi_channel.h"
#include "transport/mpi_session.h"

namespace ditrun::launcher {
namespace {

struct ServeOptions {
  std::string model, out, listen = "127.0.0.1:8188";
  std::optional<std::string> config, low_noise, plan, token, token_file, port_file, plan_size;
  std::vector<std::string> allow_roots;
  size_t max_queue = 1000, max_connections = 256;
  std::string max_body = "64mb";
  double request_timeout = 30, idle_timeout = 15;
  int http_threads = 2;
  BackendOptions backend;
  PictureOptions pictures;
  TextEncoderOptions encoders;
  DeviceOptions devices;
};

// "1024x1024" or "832x480x81": the largest job the plan must hold.
models::JobSettings parse_plan_size(const std::string& text) {
  models::JobSettings s;
  std::vector<int64_t> parts;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t x = text.find('x', pos);
    const std::string part = text.substr(pos, x == std::string::npos ? std::string::npos : x - pos);
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || v < 1)
      fail("--plan-size '{}': write WIDTHxHEIGHT or WIDTHxHEIGHTxFRAMES (e.g. 1024x1024, 832x480x81)", text);
    parts.push_back(v);
    if (x == std::string::npos) break;
    pos = x + 1;
  }
  if (parts.size() < 2 || parts.size() > 3)
    fail("--plan-size '{}': write WIDTHxHEIGHT or WIDTHxHEIGHTxFRAMES (e.g. 1024x1024, 832x480x81)", text);
  s.width = parts[0];
  s.height = parts[1];
  if (parts.size() == 3) s.frames = parts[2];
  return s;
}

std::optional<std::string> read_token(const ServeOptions& o) {
  if (o.token && o.token_file) fail("--token and --token-file: give one");
  std::optional<std::string> token = o.token;
  if (o.token_file) {
    std::ifstream in(*o.token_file);
    if (!in) fail("--token-file {}: cannot open", *o.token_file);
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) fail("--token-file {}: the first line is empty", *o.token_file);
    token = line;
  } else if (!token) {
    if (const char* env = std::getenv("DITRUN_TOKEN"); env && *env) token = env;
  }
  return token;
}

void write_port_file(const std::string& path, uint16_t port) {
  AtomicFile file(path);  // a script polling for the file never reads half of it
  const std::string text = fmt::format("{}\n", port);
  file.write(text.data(), text.size());
  file.commit();
}

// The first SIGINT (and SIGTERM, when asked) drains the board, a second exits at once. The
// handler only counts (and _exits on the second), which is safe in any thread: OpenBLAS and
// MPI start threads before main that would take a blocked-elsewhere signal's default action.
// A watcher thread turns the count into the drain and the log line.
volatile sig_atomic_t stop_signals_received = 0;
volatile sig_atomic_t last_stop_signal = 0;

extern "C" void on_stop_signal(int sig) {
  last_stop_signal = sig;
  if (++stop_signals_received >= 2) {
    static const char message[] = "ditrun serve: stopping now; running jobs are queued again at the next start\n";
    (void)!::write(2, message, sizeof message - 1);
    ::_exit(128 + sig);
  }
}

class StopSignals {
 public:
  StopSignals(JobBoard& board, bool include_sigterm) : board_(board) {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &action, nullptr);
    if (include_sigterm) ::sigaction(SIGTERM, &action, nullptr);
    thread_ = std::thread([this] {
      while (!stop_) {
        if (stop_signals_received > 0 && !board_.draining()) {
          spdlog::warn("{}: draining (running jobs finish, queued ones stay in the ledger); send it again to stop now",
                       strsignal(last_stop_signal));
          board_.drain();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  ~StopSignals() {
    stop_ = true;
    thread_.join();
  }

 private:
  JobBoard& board_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Rank 0's service around the run: the board, the API and the HTTP server.
struct Service {
  JobBoard board;
  server::PathRoots roots;
  ServeApi api;
  std::unique_ptr<server::HttpServer> http;

  Service(const ServeOptions& o, const std::string& model, const arch::ModelConfig& config,
          std::optional<std::string> default_cond, int ranks, std::optional<std::string> token)
      : board(o.out, o.max_queue, config.sampling.steps, default_cond),
        roots(o.allow_roots),
        api(board, roots, config, ServeSettings{o.out, model, default_cond, ranks, o.pictures.vae.has_value(), o.encoders.given()}) {
    const size_t resumed = board.resume();
    if (resumed) spdlog::info("resumed {} queued job(s) from {}", resumed, ledger_path(o.out));
    const server::ListenAddress address = server::parse_listen_address(o.listen);
    server::ServerOptions options;
    options.host = address.host;
    options.port = address.port;
    options.bearer_token = std::move(token);
    options.open_paths = {"/v1/health"};
    options.threads = o.http_threads;
    options.limits.max_body_bytes = parse_bytes(o.max_body, "--max-body");
    options.limits.max_connections = o.max_connections;
    options.limits.request_timeout = std::chrono::milliseconds(int64_t(o.request_timeout * 1000));
    options.limits.idle_timeout = std::chrono::milliseconds(int64_t(o.idle_timeout * 1000));
    http = std::make_unique<server::HttpServer>(options, [this](const server::Request& r) { return api.handle(r); });
    api.set_http_stats([this] {
      const server::HttpServer::Stats s = http->stats();
      return nlohmann::json{{"requests", s.requests},
                            {"errors_4xx", s.errors_4xx},
                            {"errors_5xx", s.errors_5xx},
                            {"rejected_connections", s.rejected_connections},
                            {"open_connections", s.open_connections}};
    });
    if (o.port_file) write_port_file(*o.port_file, http->port());
    spdlog::info("listening on http://{}:{}{} (model {}, {} rank(s)); loading the model", address.host, http->port(),
                 options.bearer_token ? ", bearer token required" : "", model, ranks);
    http->start();
  }
};

void check_listen(const ServeOptions& o, const std::optional<std::string>& token) {
  const server::ListenAddress address = server::parse_listen_address(o.listen);
  if (!address.loopback() && !token)
    fail("--listen {}: reachable beyond this machine without a token; give --token, --token-file or DITRUN_TOKEN "
         "(or listen on 127.0.0.1)",
         o.listen);
  if (o.max_queue == 0) fail("--max-queue: at least 1");
  if (o.max_connections == 0) fail("--max-connections: at least 1");
  if (!(o.request_timeout > 0) || !(o.idle_timeout > 0)) fail("--request-timeout and --idle-timeout: seconds > 0");
  if (o.http_threads < 1 || o.http_threads > 64) fail("--http-threads: from 1 to 64");
}

DistributedRun make_run(const ServeOptions& o, const std::string& model) {
  DistributedRun run;
  run.model = model;
  run.config = o.config;
  run.low_noise = o.low_noise;
  run.out = o.out;
  run.backend = o.backend;
  run.pictures = o.pictures;
  run.pictures.preview = true;  // clients poll /preview.png whether or not a VAE decodes
  run.encoders = o.encoders;
  run.devices = o.devices;
  run.plan_path = o.plan;
  run.plan_for = o.plan_size ? parse_plan_size(*o.plan_size) : models::JobSettings{};
  return run;
}

void report(const JobBoard& board, const std::string& out) {
  const BoardCounters c = board.counters();
  spdlog::info("stopped: {} job(s) done, {} failed, {} cancelled; {} queued stay in {} for the next start", c.done,
               c.failed, c.cancelled, c.queued, ledger_path(out));
}

void serve(ServeOptions o) {
  const std::optional<std::string> token = read_token(o);
  check_listen(o, token);
  if (o.plan_size) parse_plan_size(*o.plan_size);
  std::unique_ptr<BuiltinModel> builtin;
  if (o.model.empty()) builtin = std::make_unique<BuiltinModel>();
  const std::string model = builtin ? builtin->model_path() : resolve_model_path(o.model, o.encoders.models_dir);
  if (builtin && !o.pictures.vae) {
    o.pictures.vae = builtin->vae_path();
    o.pictures.vae_name = "built-in flux-ae-tiny";
  }
  if (builtin && !o.encoders.given() && !builtin->t5_path().empty()) {
    o.encoders.t5 = builtin->t5_path();
    o.encoders.clip = builtin->clip_path();
  }
  const std::optional<std::string> default_cond =
      builtin ? std::optional<std::string>(builtin->cond_path()) : std::nullopt;
  const std::string model_name = builtin ? "built-in tiny Flux" : o.model;
  std::filesystem::create_directories(o.out);
  DistributedRun run = make_run(o, model);
  const auto on_ready = [](Service& service) {
    return [&service](const partition::Plan& plan) {
      service.api.set_ready(partition::summarize(plan));
      spdlog::info("ready: jobs run as they arrive");
    };
  };

  if (!transport::MpiSession::launched_by_mpirun()) {
    if (o.devices.mode != "auto" || o.devices.stages != 0)
      fail("--mode and --stages shape a service over several ranks: start it with mpirun -np N");
    const arch::ModelConfig config = models::open_model_files({model, o.low_noise, o.config}).source.config;
    Service service(o, model_name, config, default_cond, 1, token);
    StopSignals stop(service.board, true);
    // One rank on a local channel: the same coordinator and stage worker as under mpirun.
    auto channels = transport::make_local_channels(1);
    run.source = &service.board;
    run.on_ready = on_ready(service);
    try {
      run_distributed(*channels[0], run);
    } catch (...) {
      service.http->stop();
      throw;
    }
    service.http->stop();
    report(service.board, o.out);
    return;
  }

  // Under mpirun, SIGTERM stays with the abort report (mpirun sends it when a rank dies);
  // SIGINT to rank 0 drains.
  transport::MpiSession session;
  spdlog::set_pattern(fmt::format("[%H:%M:%S.%e] [rank {}] [%^%l%$] %v", session.rank()));
  auto channel = transport::make_mpi_channel(session);
  const std::vector<transport::RankInfo> ranks = transport::all_ranks(session);
  spdlog::info("rank {} of {} on {} (pid {})", session.rank(), session.size(), session.hostname(),
               ranks[size_t(session.rank())].pid);
  if (run.backend.cuda_device < 0) run.backend.cuda_device = gpu_for_local_rank(session.local_rank());
  run.device_link = [&session] { return transport::make_nccl_link(session); };
  std::optional<Service> service;
  std::optional<StopSignals> stop;
  try {
    if (session.rank() == 0) {
      install_abort_report(ranks, session.hostname());
      run.on_in_flight = set_jobs_in_flight;
      const arch::ModelConfig config = models::open_model_files({model, o.low_noise, o.config}).source.config;
      service.emplace(o, model_name, config, default_cond, session.size(), token);
      stop.emplace(service->board, false);
      run.source = &service->board;
      run.on_ready = on_ready(*service);
    }
    run_distributed(*channel, run);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    if (service) service->http->stop();
    session.abort(2);
  }
  if (service) {
    service->http->stop();
    report(service->board, o.out);
  }
  session.barrier();
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "serve", "Render jobs submitted over HTTP (POST /v1/jobs), on every rank of an mpirun run, until stopped");
  static ServeOptions o;
  cmd->add_option("model", o.model, "A .safetensors or .gguf checkpoint (omitted: the built-in tiny Flux)");
  cmd->add_option("--out", o.out, "Output folder: latents, previews, ledger (a restart resumes its queue)")->required();
  cmd->add_option("--listen", o.listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  cmd->add_option("--token", o.token, "Bearer token every request but /v1/health must carry (or DITRUN_TOKEN)");
  cmd->add_option("--token-file", o.token_file, "Read the bearer token from this file's first line");
  cmd->add_option("--allow-root", o.allow_roots,
                  "A folder whose files jobs may name as server-side paths (repeatable; none: uploads only)");
  cmd->add_option("--max-queue", o.max_queue, "Jobs waiting at most; more are refused with 429")->capture_default_str();
  cmd->add_option("--max-body", o.max_body, "Largest request body (uploads are base64 in it)")->capture_default_str();
  cmd->add_option("--max-connections", o.max_connections, "Open HTTP connections at most")->capture_default_str();
  cmd->add_option("--request-timeout", o.request_timeout, "Seconds a request may take to arrive")->capture_default_str();
  cmd->add_option("--idle-timeout", o.idle_timeout, "Seconds an idle keep-alive connection stays open")
      ->capture_default_str();
  cmd->add_option("--http-threads", o.http_threads, "Threads answering HTTP")->capture_default_str();
  cmd->add_option("--port-file", o.port_file, "Write the listening port here once listening (for scripts)");
  cmd->add_option("--config", o.config, "A sidecar config JSON for the model");
  cmd->add_option("--low-noise", o.low_noise, kLowNoiseHelp);
  cmd->add_option("--plan", o.plan, "A plan JSON from `ditrun plan`");
  cmd->add_option("--plan-size", o.plan_size, "The largest job to plan memory for, WxH or WxHxFRAMES (default: the "
                                              "model's default size)");
  add_device_options(*cmd, o.devices, false);
  add_sharing_options(*cmd, o.devices);
  add_backend_options(*cmd, o.backend);
  add_picture_options(*cmd, o.pictures, false);
  add_text_encoder_options(*cmd, o.encoders);
  cmd->callback([] { serve(o); });
}

}  // namespace ditrun::launcher
