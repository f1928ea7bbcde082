// Between Beast's messages and the plain Request/Response the handler sees. Kept apart from
// the connection's state machine: this is the part that decides what goes on the wire.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/core/string.hpp>
#include <string>
#include <string_view>

#include "server/http_message.h"

namespace ditrun::server {

using WireRequest = boost::beast::http::request<boost::beast::http::string_body>;
using WireResponse = boost::beast::http::response<boost::beast::http::string_body>;

// Beast 1.74 speaks boost::string_view.
inline std::string_view std_view(boost::beast::string_view text) { return {text.data(), text.size()}; }

// Splits the target on the first '?', lowercases header names, moves the body out.
Request to_request(WireRequest&& message, std::string remote);

// Adds Content-Type, Content-Length, "Cache-Control: no-store" and, when !keep_alive,
// "Connection: close". The handler's extra headers that would change the framing
// (Content-Length, Transfer-Encoding, Connection) or that hold CR/LF are dropped. For HEAD
// the Content-Length is the body's but no body is sent. `response.status` must be 100..999.
WireResponse to_wire_response(Response response, bool head_request, bool keep_alive);

}  // namespace ditrun::server
