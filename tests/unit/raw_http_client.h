// A blocking TCP client for the HTTP server tests: it writes exactly the bytes it is given
// (so malformed requests can be sent) and reads responses with a time limit (so a server
// that fails to answer fails the test instead of hanging it).
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ditrun::server::testing {

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;

  bool has_header(const std::string& name) const { return headers.count(name) > 0; }
  std::string header(const std::string& name) const {
    const auto found = headers.find(name);
    return found == headers.end() ? "" : found->second;
  }
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

class RawHttpClient {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RawHttpClient(uint16_t port) : socket_(io_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  }

  // False when the server has already closed or reset the connection.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t sent = ::send(fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }

  // The next response (a 100 Continue counts as one); nullopt when the connection ends or
  // `timeout` passes before a whole response has arrived. A response to HEAD has a
  // Content-Length but no body.
  std::optional<RawResponse> read_response(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(3000), bool to_head = false) {
    const auto deadline = Clock::now() + timeout;
    size_t head_end;
    while ((head_end = pending_.find("\r\n\r\n")) == std::string::npos)
      if (!receive_more(deadline)) return std::nullopt;
    RawResponse response;
    parse_head(pending_.substr(0, head_end), response);
    pending_.erase(0, head_end + 4);
    const size_t length =
        response.has_header("content-length") ? std::stoul(response.header("content-length")) : 0;
    if (!to_head) {
      while (pending_.size() < length)
        if (!receive_more(deadline)) return std::nullopt;
      response.body = pending_.substr(0, length);
      pending_.erase(0, length);
    }
    return response;
  }

  // Whether the server closes (or resets) the connection within `timeout`; what arrives
  // before that is kept for read_response.
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (receive_more(deadline)) {
    }
    return closed_;
  }

  // Bytes received but not yet read as a response.
  const std::string& pending() const { return pending_; }
  // Ends the connection from this side.
  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  int fd() { return socket_.native_handle(); }

  // Appends whatever arrives before the deadline; false on EOF, reset or timeout.
  bool receive_more(Clock::time_point deadline) {
    if (closed_) return false;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd poller{fd(), POLLIN, 0};
      const int ready = ::poll(&poller, 1, static_cast<int>(left));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return false;
      char chunk[16384];
      const ssize_t got = ::recv(fd(), chunk, sizeof chunk, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        closed_ = true;
        return false;
      }
      pending_.append(chunk, static_cast<size_t>(got));
      return true;
    }
  }

  static void parse_head(const std::string& head, RawResponse& response) {
    size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12)
      throw std::runtime_error("not an HTTP response: " + status_line);
    response.status = std::stoi(status_line.substr(9, 3));
    while (line_end != std::string::npos) {
      const size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      const std::string line =
          head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const size_t value_start = line.find_first_not_of(' ', colon + 1);
      response.headers[name] = value_start == std::string::npos ? "" : line.substr(value_start);
    }
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  std::string pending_;
  bool closed_ = false;
};

}  // namespace ditrun::server::testing
