// One accepted TCP connection and the requests read from it, one after another. Every step
// is an asynchronous operation on the connection's strand, each bounded in time:
//
//   wait (idle_timeout) -> header -> checks -> [100 Continue] -> body -> handler -> write
//   \____________ request_timeout, from the first byte ____________/     (request_timeout)
//
// then back to waiting on keep-alive, or a lingering close: the write side is shut and
// unread input drained briefly, so a client still sending a refused body gets the error
// response rather than a reset.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "server/server_state.h"
#include "server/wire_message.h"

namespace ditrun::server {

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  // `socket` must run on its own strand. An admitted connection counts in
  // open_connections; one that is not is only ever rejected.
  HttpConnection(boost::asio::ip::tcp::socket socket, std::shared_ptr<ServerState> state,
                 bool admitted);
  ~HttpConnection();

  void serve();   // read and answer requests until the connection ends
  void reject();  // 503: the server is at max_connections
  void close();   // from any thread: ends the connection at once (server stopping)

 private:
  using Parser = boost::beast::http::request_parser<boost::beast::http::string_body>;
  using ErrorCode = boost::beast::error_code;
  enum class Phase { waiting, reading, continuing, handling, writing, closing };

  void wait_for_request();
  void on_first_bytes(ErrorCode ec, size_t bytes);
  void begin_request();
  void on_deadline(ErrorCode ec, uint64_t request_number);
  void on_header(ErrorCode ec, size_t bytes);
  std::optional<Response> refusal_after_header() const;
  void on_continue_sent(ErrorCode ec, size_t bytes);
  void read_body();
  void on_body(ErrorCode ec, size_t bytes);
  void on_read_failed(ErrorCode ec);
  Response call_handler(const Request& request) const;
  void send(Response response, bool keep_alive);
  void on_written(bool keep_alive, ErrorCode ec, size_t bytes);
  void linger_then_close();
  void on_drained(ErrorCode ec, size_t bytes);
  void finish();

  std::shared_ptr<ServerState> state_;
  const ServerLimits& limits_;
  const bool admitted_;
  boost::beast::tcp_stream stream_;
  boost::asio::steady_timer deadline_;  // request_timeout: ours, not the stream's, so that a
                                        // late request can still be answered with 408
  boost::beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  std::optional<WireResponse> response_;
  std::string remote_;

  Phase phase_ = Phase::waiting;
  uint64_t request_number_ = 0;  // tells a stale deadline from the current one
  bool deadline_passed_ = false;
  bool finished_ = false;
  size_t drained_bytes_ = 0;
  // For the log line of the request in flight.
  std::chrono::steady_clock::time_point request_start_;
  std::string method_ = "-", path_ = "-";
  bool head_request_ = false;
};

}  // namespace ditrun::server
