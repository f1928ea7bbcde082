#include "server/http_message.h"

namespace ditrun::server {

const std::string& Request::header(const std::string& lowercase_name) const {
  static const std::string kAbsent;
  const auto found = headers.find(lowercase_name);
  return found == headers.end() ? kAbsent : found->second;
}

Response Response::json(int status, const nlohmann::json& body) {
  Response response;
  response.status = status;
  // Replacing invalid UTF-8 rather than throwing: an error message may quote client bytes.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return response;
}

Response Response::error(int status, const std::string& message) {
  return json(status, {{"error", message}, {"status", status}});
}

}  // namespace ditrun::server
