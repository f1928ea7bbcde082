#include "server/listen_address.h"

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "runtime/core/error.h"

namespace ditrun::server {
namespace {

namespace ip = boost::asio::ip;

bool is_ip_literal(const std::string& host, ip::address* address = nullptr) {
  boost::system::error_code ec;
  const auto parsed = ip::make_address(host, ec);
  if (ec) return false;
  if (address) *address = parsed;
  return true;
}

// RFC 1123 host names: letters, digits, '-' and '.', no empty label.
bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '.' || host.front() == '-') return false;
  if (host.find("..") != std::string_view::npos) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

[[noreturn]] void reject_listen_address(std::string_view text, std::string_view reason) {
  fail("--listen '{}': {}", text, reason);
}

}  // namespace

bool ListenAddress::loopback() const {
  if (lowercase(host) == "localhost") return true;
  ip::address address;
  return is_ip_literal(host, &address) && address.is_loopback();
}

std::string ListenAddress::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

ListenAddress parse_listen_address(std::string_view text) {
  const auto reject = [text](std::string_view reason) { reject_listen_address(text, reason); };
  ListenAddress address;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) reject("missing ']' after the IPv6 address");
    address.host = std::string(text.substr(1, close - 1));
    ip::address parsed;
    if (!is_ip_literal(address.host, &parsed) || !parsed.is_v6())
      reject(fmt::format("'{}' is not an IPv6 address", address.host));
    if (close + 1 >= text.size() || text[close + 1] != ':')
      reject("write HOST:PORT, for example [::1]:8188");
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      reject("write HOST:PORT, for example 127.0.0.1:8188");
    address.host = std::string(text.substr(0, colon));
    if (address.host.find(':') != std::string::npos)
      reject("put an IPv6 address in brackets, for example [::1]:8188");
    if (!is_ip_literal(address.host) && !is_host_name(address.host))
      reject(fmt::format("'{}' is not a host name or IP address", address.host));
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535)
    reject(fmt::format("port '{}' is not a number from 0 to 65535", port_text));
  address.port = static_cast<uint16_t>(port);
  return address;
}

}  // namespace ditrun::server
