// A small HTTP/1.1 server for a JSON API: keep-alive, an optional bearer token, limits on
// header and body size, on the time a request may take and on open connections, and a
// JSON error for every way a client can get it wrong. Everything on the socket is
// asynchronous (Boost.Beast), so a slow or hostile client holds a connection slot, never a
// thread. The one Handler answers every request that gets past those checks; it runs on an
// io thread and must be safe to call from several at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "server/http_message.h"

namespace ditrun::server {

struct ServerLimits {
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 64u << 20;
  std::chrono::milliseconds request_timeout{30000};  // from a request's first byte to its last
                                                     // (and again for writing the response)
  std::chrono::milliseconds idle_timeout{15000};     // keep-alive: waiting for the next request
  size_t max_connections = 256;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8188;  // 0: any free port
  ServerLimits limits;
  std::optional<std::string> bearer_token;  // when set, every request needs
                                            // "Authorization: Bearer <token>"
  std::set<std::string> open_paths;         // paths that need no token (e.g. "/v1/health")
  int threads = 2;                          // io threads
};

using Handler = std::function<Response(const Request&)>;

class HttpServer {
 public:
  // Binds and listens now, so the port is known (and taken) before start(); fails with
  // ditrun::Error "cannot listen on HOST:PORT: reason", or on an empty bearer token.
  HttpServer(ServerOptions options, Handler handler);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;  // the bound port (useful with port 0)
  void start();           // io threads begin serving; once only
  // Stop accepting, close every connection, join the io threads; idempotent. Waits for
  // handlers already running, so it must not be called from inside the handler.
  void stop();

  // Counters for metrics. Responses on admitted connections count in `requests` and by
  // status class (the server's own 400/401/408/413/431/505 included); connections turned
  // away for max_connections count only in rejected_connections.
  struct Stats {
    uint64_t requests = 0, errors_4xx = 0, errors_5xx = 0, rejected_connections = 0;
    size_t open_connections = 0;
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ditrun::server
