// The HOST:PORT a server listens on, as written after --listen. Parsing it up front turns a
// typo into a one-line error before anything binds, and loopback() lets the caller insist on
// a token before the server is reachable from other machines.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ditrun::server {

struct ListenAddress {
  std::string host;  // a name or an IP literal; IPv6 without the brackets
  uint16_t port = 0;  // 0: any free port

  // 127.0.0.0/8, ::1 or "localhost": reachable from this machine only.
  bool loopback() const;
  // "127.0.0.1:8188", "[::1]:8188": brackets put back around IPv6 literals.
  std::string to_string() const;
};

// Accepts "127.0.0.1:8188", "localhost:8188", "0.0.0.0:80", "[::1]:8188" and port 0.
// Throws ditrun::Error "--listen 'TEXT': reason" otherwise (no host, no port, a bare IPv6
// literal, a port past 65535, characters no host name has).
ListenAddress parse_listen_address(std::string_view text);

}  // namespace ditrun::server
