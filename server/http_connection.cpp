#include "server/http_connection.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <limits>

#include "server/bearer_token.h"

namespace ditrun::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

constexpr size_t kFirstReadBytes = 4096;
// A refused request's body still on its way: drained this long and this much at most, long
// enough for the client to read the error, short enough not to pay for a 64 MB upload.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kLingerBytes = 1u << 20;
constexpr size_t kDrainChunkBytes = 16 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::string endpoint_text(const tcp::socket& socket) {
  beast::error_code ec;
  const tcp::endpoint endpoint = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  const auto address = endpoint.address();
  return address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), endpoint.port())
                         : fmt::format("{}:{}", address.to_string(), endpoint.port());
}

// Beast refuses any version but 1.0 and 1.1 as a parse error; a well-formed "HTTP/2.0" at
// the end of the request line deserves 505 instead of 400. Returns that version, or "".
std::string unsupported_version(const beast::flat_buffer& buffer) {
  const std::string_view start(static_cast<const char*>(buffer.data().data()), buffer.size());
  const size_t line_end = start.find("\r\n");
  if (line_end == std::string_view::npos) return "";
  const std::string_view line = start.substr(0, line_end);
  const size_t space = line.rfind(' ');
  if (space == std::string_view::npos) return "";
  const std::string_view version = line.substr(space + 1);
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !digit(version[5]) ||
      version[6] != '.' || !digit(version[7]))
    return "";
  return std::string(version);
}

bool is_parse_error(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

}  // namespace

HttpConnection::HttpConnection(tcp::socket socket, std::shared_ptr<ServerState> state,
                               bool admitted)
    : state_(std::move(state)),
      limits_(state_->options.limits),
      admitted_(admitted),
      stream_(std::move(socket)),
      deadline_(stream_.get_executor()),
      remote_(endpoint_text(stream_.socket())),
      request_start_(std::chrono::steady_clock::now()) {
  if (admitted_) state_->open_connections.fetch_add(1);
}

HttpConnection::~HttpConnection() {
  if (admitted_) state_->open_connections.fetch_sub(1);
  state_->remove(this);
}

void HttpConnection::serve() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->wait_for_request(); });
}

void HttpConnection::reject() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->state_->rejected_connections.fetch_add(1);
    Response response = Response::error(
        503, fmt::format("the server is at its limit of {} open connections; try again later",
                         self->limits_.max_connections));
    response.headers.emplace_back("Retry-After", "1");
    self->send(std::move(response), /*keep_alive=*/false);
  });
}

void HttpConnection::close() {
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->finish(); });
}

void HttpConnection::wait_for_request() {
  if (finished_) return;
  phase_ = Phase::waiting;
  deadline_passed_ = false;
  method_.assign(1, '-');
  path_.assign(1, '-');
  head_request_ = false;
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(
      std::min<size_t>(limits_.max_header_bytes, std::numeric_limits<uint32_t>::max())));
  // No body limit while the header is read: Beast would refuse a large Content-Length before
  // the token is checked, and a client without the token should learn that first. (Not
  // boost::none: Beast 1.74 compares a length with it as optional, and every length is
  // greater than none.)
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  if (buffer_.size() > 0) {  // a pipelined request already arrived with the last one
    begin_request();
    return;
  }
  stream_.expires_after(limits_.idle_timeout);
  stream_.async_read_some(buffer_.prepare(kFirstReadBytes),
                          beast::bind_front_handler(&HttpConnection::on_first_bytes,
                                                    shared_from_this()));
}

void HttpConnection::on_first_bytes(ErrorCode ec, size_t bytes) {
  if (ec) {  // idle timeout, the client left, or the server is stopping
    finish();
    return;
  }
  buffer_.commit(bytes);
  begin_request();
}

void HttpConnection::begin_request() {
  phase_ = Phase::reading;
  request_start_ = std::chrono::steady_clock::now();
  ++request_number_;
  stream_.expires_never();  // the deadline timer bounds the whole request instead
  deadline_.expires_after(limits_.request_timeout);
  deadline_.async_wait([self = shared_from_this(), number = request_number_](ErrorCode ec) {
    self->on_deadline(ec, number);
  });
  http::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&HttpConnection::on_header, shared_from_this()));
}

void HttpConnection::on_deadline(ErrorCode ec, uint64_t request_number) {
  // A stale expiry (the request finished as the timer fired) must not cut the next one short.
  if (ec || finished_ || request_number != request_number_) return;
  if (phase_ != Phase::reading && phase_ != Phase::continuing) return;
  deadline_passed_ = true;
  ErrorCode ignored;
  stream_.socket().cancel(ignored);  // the pending read or write ends with operation_aborted
}

void HttpConnection::on_header(ErrorCode ec, size_t) {
  if (ec) {
    on_read_failed(ec);
    return;
  }
  if (deadline_passed_) {  // the timer fired after the read had completed: nothing was cancelled
    on_read_failed(net::error::operation_aborted);
    return;
  }
  const auto& message = parser_->get();
  method_ = std::string(std_view(message.method_string()));
  const std::string_view target = std_view(message.target());
  path_ = std::string(target.substr(0, target.find('?')));
  head_request_ = message.method() == http::verb::head;
  if (auto refusal = refusal_after_header()) {
    send(std::move(*refusal), /*keep_alive=*/false);
    return;
  }
  if (beast::iequals(message[http::field::expect], "100-continue") && !parser_->is_done()) {
    // curl waits for this (a second, by default) before sending a large body.
    phase_ = Phase::continuing;
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     beast::bind_front_handler(&HttpConnection::on_continue_sent,
                                               shared_from_this()));
    return;
  }
  read_body();
}

std::optional<Response> HttpConnection::refusal_after_header() const {
  const auto& message = parser_->get();
  const ServerOptions& options = state_->options;
  if (options.bearer_token && !options.open_paths.contains(path_) &&
      !bearer_token_matches(std_view(message[http::field::authorization]), *options.bearer_token)) {
    Response response =
        Response::error(401, "missing or wrong bearer token: send 'Authorization: Bearer TOKEN'");
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return response;
  }
  if (const auto length = parser_->content_length(); length && *length > limits_.max_body_bytes)
    return Response::error(413, fmt::format("request body of {} bytes is over the limit of {} bytes",
                                            *length, limits_.max_body_bytes));
  return std::nullopt;
}

void HttpConnection::on_continue_sent(ErrorCode ec, size_t) {
  if (ec) {  // maybe half of the 100 went out: nothing more can be said on this connection
    deadline_.cancel();
    finish();
    return;
  }
  phase_ = Phase::reading;
  read_body();
}

void HttpConnection::read_body() {
  if (deadline_passed_) {  // as in on_header: a late expiry found no read to cancel
    on_read_failed(net::error::operation_aborted);
    return;
  }
  // Content-Length was checked above; this is what bounds a chunked body.
  parser_->body_limit(limits_.max_body_bytes);
  if (parser_->is_done()) {
    on_body({}, 0);
    return;
  }
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpConnection::on_body, shared_from_this()));
}

void HttpConnection::on_body(ErrorCode ec, size_t) {
  if (ec) {
    on_read_failed(ec);
    return;
  }
  deadline_.cancel();
  phase_ = Phase::handling;
  WireRequest message = parser_->release();
  // HTTP/1.0 clients get one response each: no keep-alive for them to get wrong.
  const bool keep_alive = message.version() == 11 && message.keep_alive() && !state_->stopping();
  const Request request = to_request(std::move(message), remote_);
  send(call_handler(request), keep_alive);
}

void HttpConnection::on_read_failed(ErrorCode ec) {
  deadline_.cancel();
  if (finished_) return;  // closed by stop()
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    send(Response::error(431, fmt::format("request header is over the limit of {} bytes",
                                          limits_.max_header_bytes)),
         false);
  } else if (ec == http::error::body_limit) {
    send(Response::error(413, fmt::format("request body is over the limit of {} bytes",
                                          limits_.max_body_bytes)),
         false);
  } else if (deadline_passed_) {
    send(Response::error(408, fmt::format("request not complete within {} ms",
                                          limits_.request_timeout.count())),
         false);
  } else if (const std::string version = unsupported_version(buffer_);
             ec == http::error::bad_version && !version.empty()) {
    send(Response::error(505, fmt::format("{} is not supported; use HTTP/1.1", version)), false);
  } else if (is_parse_error(ec)) {
    send(Response::error(400, fmt::format("malformed request: {}", ec.message())), false);
  } else {
    finish();  // the client closed or reset the connection: nobody to answer
  }
}

Response HttpConnection::call_handler(const Request& request) const {
  try {
    Response response = state_->handler(request);
    if (response.status < 200 || response.status > 999) {
      spdlog::error("{} {} from {}: the handler returned status {}", method_, path_, remote_,
                    response.status);
      return Response::error(
          500, fmt::format("internal error: the handler returned status {}", response.status));
    }
    return response;
  } catch (const std::exception& e) {
    spdlog::error("{} {} from {}: the handler failed: {}", method_, path_, remote_, e.what());
    return Response::error(500, fmt::format("internal error: {}", e.what()));
  } catch (...) {
    spdlog::error("{} {} from {}: the handler threw a non-exception", method_, path_, remote_);
    return Response::error(500, "internal error: unknown exception");
  }
}

void HttpConnection::send(Response response, bool keep_alive) {
  if (finished_) return;
  deadline_.cancel();
  phase_ = Phase::writing;
  const int status = response.status;
  if (admitted_) state_->count_response(status);
  const std::chrono::duration<double, std::milli> elapsed =
      std::chrono::steady_clock::now() - request_start_;
  spdlog::debug("{} {} {} {:.1f} ms from {}", method_, path_, status, elapsed.count(), remote_);
  response_.emplace(to_wire_response(std::move(response), head_request_, keep_alive));
  stream_.expires_after(limits_.request_timeout);  // a client that does not read is dropped
  http::async_write(stream_, *response_,
                    [self = shared_from_this(), keep_alive](ErrorCode ec, size_t bytes) {
                      self->on_written(keep_alive, ec, bytes);
                    });
}

void HttpConnection::on_written(bool keep_alive, ErrorCode ec, size_t) {
  response_.reset();
  if (ec) {
    finish();
  } else if (!keep_alive) {
    linger_then_close();
  } else {
    wait_for_request();
  }
}

void HttpConnection::linger_then_close() {
  if (finished_) return;
  phase_ = Phase::closing;
  ErrorCode ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);  // the client sees EOF now
  stream_.expires_after(std::min(limits_.request_timeout, kLingerTime));
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(kDrainChunkBytes),
                          beast::bind_front_handler(&HttpConnection::on_drained,
                                                    shared_from_this()));
}

void HttpConnection::on_drained(ErrorCode ec, size_t bytes) {
  drained_bytes_ += bytes;
  if (ec || finished_ || drained_bytes_ > kLingerBytes) {
    finish();
    return;
  }
  // Not committed: the same scratch space is read into again.
  stream_.async_read_some(buffer_.prepare(kDrainChunkBytes),
                          beast::bind_front_handler(&HttpConnection::on_drained,
                                                    shared_from_this()));
}

void HttpConnection::finish() {
  if (finished_) return;
  finished_ = true;
  phase_ = Phase::closing;
  deadline_.cancel();
  stream_.close();
}

}  // namespace ditrun::server
