// A request as the handler sees it and the response it returns: plain values, free of
// Boost, so the code behind `ditrun serve` can be written and tested without a socket.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace ditrun::server {

struct Request {
  std::string method;                          // "GET", "POST", ... as sent (case kept)
  std::string path;                            // target before '?', raw (not percent-decoded)
  std::string query;                           // after the first '?', raw ("" if none)
  std::map<std::string, std::string> headers;  // lowercase names; repeats joined with ", "
  std::string body;
  std::string remote;                          // "127.0.0.1:53122", "[::1]:53122"

  // The header's value, or "" when absent; name in lowercase.
  const std::string& header(const std::string& lowercase_name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra headers (Location, Retry-After, ...). The server owns the framing ones:
  // Content-Length, Transfer-Encoding and Connection given here are dropped.
  std::vector<std::pair<std::string, std::string>> headers;

  // body.dump() + "\n".
  static Response json(int status, const nlohmann::json& body);
  // {"error": message, "status": status}.
  static Response error(int status, const std::string& message);
};

}  // namespace ditrun::server
