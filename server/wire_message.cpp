#include "server/wire_message.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <cctype>

namespace ditrun::server {
namespace {

namespace http = boost::beast::http;

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// RFC 7230 token characters for names; no CR, LF or NUL in values (header injection).
bool is_safe_header(std::string_view name, std::string_view value) {
  const bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
  return name_ok && value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool is_framing_header(std::string_view lowercase_name) {
  return lowercase_name == "content-length" || lowercase_name == "transfer-encoding" ||
         lowercase_name == "connection";
}

}  // namespace

Request to_request(WireRequest&& message, std::string remote) {
  Request request;
  request.method = std::string(std_view(message.method_string()));
  const std::string_view target = std_view(message.target());
  const size_t question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) request.query = std::string(target.substr(question + 1));
  for (const auto& field : message) {
    auto [it, inserted] =
        request.headers.try_emplace(lowercase(std_view(field.name_string())), std::string(std_view(field.value())));
    if (!inserted) (it->second += ", ") += std_view(field.value());  // RFC 7230 3.2.2: a list
  }
  request.body = std::move(message.body());
  request.remote = std::move(remote);
  return request;
}

WireResponse to_wire_response(Response response, bool head_request, bool keep_alive) {
  WireResponse wire;
  wire.version(11);
  wire.result(static_cast<unsigned>(response.status));
  for (const auto& [name, value] : response.headers) {
    if (is_framing_header(lowercase(name))) continue;
    if (!is_safe_header(name, value)) {
      spdlog::warn("http server: dropped the response header '{}': not a valid header", name);
      continue;
    }
    wire.insert(name, value);
  }
  const std::string& content_type =
      is_safe_header("Content-Type", response.content_type) ? response.content_type : "text/plain";
  wire.set(http::field::content_type, content_type);
  wire.set(http::field::cache_control, "no-store");
  // 1xx and 204 may carry neither a body nor a Content-Length (RFC 7230 3.3.2).
  const bool bodiless = response.status < 200 || response.status == 204;
  if (!bodiless) {
    wire.content_length(response.body.size());
    if (!head_request) wire.body() = std::move(response.body);
  }
  wire.keep_alive(keep_alive);
  return wire;
}

}  // namespace ditrun::server
