#include "server/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/core/error.h"
#include "server/http_connection.h"
#include "server/listen_address.h"
#include "server/server_state.h"

namespace ditrun::server {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// accept() failing at once (out of file descriptors, mostly) would otherwise spin.
constexpr std::chrono::milliseconds kAcceptRetryDelay{50};

// The first of the host's addresses that binds: "localhost" may name ::1 and 127.0.0.1.
void bind_and_listen(tcp::acceptor& acceptor, net::io_context& io, const ServerOptions& options) {
  const std::string where = ListenAddress{options.host, options.port}.to_string();
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  const auto endpoints =
      resolver.resolve(options.host, std::to_string(options.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) fail("cannot listen on {}: {}", where, ec.message());
  for (const auto& entry : endpoints) {
    ec.clear();
    if (acceptor.is_open()) acceptor.close();
    acceptor.open(entry.endpoint().protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(entry.endpoint(), ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (!ec) return;
  }
  if (acceptor.is_open()) acceptor.close();
  fail("cannot listen on {}: {}", where, ec ? ec.message() : "the host has no address");
}

}  // namespace

struct HttpServer::Impl {
  Impl(ServerOptions options, Handler handler)
      : io(std::max(1, options.threads)),
        state(std::make_shared<ServerState>(std::move(options), std::move(handler))),
        acceptor(net::make_strand(io)),
        accept_retry(acceptor.get_executor()) {}

  void accept_next() {
    acceptor.async_accept(net::make_strand(io),
                          [this](boost::system::error_code ec, tcp::socket socket) {
                            on_accept(ec, std::move(socket));
                          });
  }

  // Runs on the acceptor's strand, one at a time: the connection count read here cannot be
  // raised by anyone else before the new connection is counted.
  void on_accept(boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      spdlog::warn("http server: accept failed: {}", ec.message());
      accept_retry.expires_after(kAcceptRetryDelay);
      accept_retry.async_wait([this](boost::system::error_code wait_ec) {
        if (!wait_ec && acceptor.is_open()) accept_next();
      });
      return;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // small JSON responses go out at once
    const bool admitted =
        state->open_connections.load() < state->options.limits.max_connections;
    auto connection = std::make_shared<HttpConnection>(std::move(socket), state, admitted);
    if (!state->add(connection)) return;  // stopping: dropping it closes the socket
    if (admitted) {
      connection->serve();
    } else {
      spdlog::debug("http server: turned away a connection: {} open",
                    state->open_connections.load());
      connection->reject();
    }
    accept_next();
  }

  void run_io() {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {  // nothing should throw here; keep serving if so
        spdlog::error("http server: {}", e.what());
      }
    }
  }

  // Declared first, destroyed last: everything below holds references into it.
  net::io_context io;
  std::shared_ptr<ServerState> state;
  tcp::acceptor acceptor;
  net::steady_timer accept_retry;
  uint16_t port = 0;
  std::vector<std::thread> threads;
  std::mutex lifecycle;
  bool started = false, stopped = false;
};

HttpServer::HttpServer(ServerOptions options, Handler handler) {
  if (options.bearer_token && options.bearer_token->empty())
    fail("the bearer token is empty: give a token or none");
  if (!handler) fail("the HTTP server has no handler");
  impl_ = std::make_unique<Impl>(std::move(options), std::move(handler));
  bind_and_listen(impl_->acceptor, impl_->io, impl_->state->options);
  impl_->port = impl_->acceptor.local_endpoint().port();
}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::start() {
  std::lock_guard lock(impl_->lifecycle);
  if (impl_->started || impl_->stopped) return;
  impl_->started = true;
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] { impl->accept_next(); });
  const int threads = std::max(1, impl_->state->options.threads);
  for (int i = 0; i < threads; ++i)
    impl_->threads.emplace_back([impl = impl_.get()] { impl->run_io(); });
}

void HttpServer::stop() {
  std::lock_guard lock(impl_->lifecycle);
  if (impl_->stopped) return;
  impl_->stopped = true;
  const auto open = impl_->state->begin_stop();  // from here on, accepted sockets are dropped
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    impl->accept_retry.cancel();
  });
  for (const auto& connection : open) connection->close();
  // No work guard: once the acceptor and every connection are closed, run() runs out of
  // work and returns.
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
}

HttpServer::Stats HttpServer::stats() const {
  const ServerState& state = *impl_->state;
  Stats stats;
  stats.requests = state.requests.load(std::memory_order_relaxed);
  stats.errors_4xx = state.errors_4xx.load(std::memory_order_relaxed);
  stats.errors_5xx = state.errors_5xx.load(std::memory_order_relaxed);
  stats.rejected_connections = state.rejected_connections.load(std::memory_order_relaxed);
  stats.open_connections = state.open_connections.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace ditrun::server
