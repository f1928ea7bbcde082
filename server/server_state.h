// What the acceptor and every connection of one HttpServer share: the options, the
// handler, the counters behind stats(), and the registry stop() uses to close connections
// still open. Held by shared_ptr so a connection finishing after the server object is gone
// (its last handler destroyed with the io_context) still has somewhere to count.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "server/http_server.h"

namespace ditrun::server {

class HttpConnection;

struct ServerState {
  ServerState(ServerOptions options, Handler handler)
      : options(std::move(options)), handler(std::move(handler)) {}

  const ServerOptions options;
  const Handler handler;

  std::atomic<uint64_t> requests{0}, errors_4xx{0}, errors_5xx{0}, rejected_connections{0};
  std::atomic<size_t> open_connections{0};  // admitted ones only

  void count_response(int status) {
    requests.fetch_add(1, std::memory_order_relaxed);
    if (status >= 400 && status < 500) errors_4xx.fetch_add(1, std::memory_order_relaxed);
    if (status >= 500) errors_5xx.fetch_add(1, std::memory_order_relaxed);
  }

  // False once stopping: the caller drops the connection instead of serving it.
  bool add(const std::shared_ptr<HttpConnection>& connection) {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    connections_.emplace(connection.get(), connection);
    return true;
  }
  void remove(const HttpConnection* connection) {
    std::lock_guard lock(mutex_);
    connections_.erase(connection);
  }
  bool stopping() const {
    std::lock_guard lock(mutex_);
    return stopping_;
  }
  // Marks the server stopping and returns the connections still alive, for closing.
  std::vector<std::shared_ptr<HttpConnection>> begin_stop() {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    std::vector<std::shared_ptr<HttpConnection>> alive;
    for (const auto& [key, weak] : connections_)
      if (auto connection = weak.lock()) alive.push_back(std::move(connection));
    return alive;
  }

 private:
  mutable std::mutex mutex_;
  bool stopping_ = false;
  std::unordered_map<const HttpConnection*, std::weak_ptr<HttpConnection>> connections_;
};

}  // namespace ditrun::server
