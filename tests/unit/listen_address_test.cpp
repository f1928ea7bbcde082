// --listen HOST:PORT: the forms accepted, the one-line errors for the rest, loopback().
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/core/error.h"
#include "server/listen_address.h"

namespace ditrun::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string error_of(std::string_view text) {
  try {
    parse_listen_address(text);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "'" << text << "' was accepted";
  return "";
}

TEST(ListenAddress, ParsesTheAcceptedForms) {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
    const char* round_trip;
  };
  for (const Case& c : {Case{"127.0.0.1:8188", "127.0.0.1", 8188, "127.0.0.1:8188"},
                        Case{"localhost:8188", "localhost", 8188, "localhost:8188"},
                        Case{"0.0.0.0:80", "0.0.0.0", 80, "0.0.0.0:80"},
                        Case{"[::1]:8188", "::1", 8188, "[::1]:8188"},
                        Case{"[::]:0", "::", 0, "[::]:0"},
                        Case{"gpu-node-3.cluster:65535", "gpu-node-3.cluster", 65535,
                             "gpu-node-3.cluster:65535"}}) {
    const ListenAddress address = parse_listen_address(c.text);
    EXPECT_EQ(address.host, c.host) << c.text;
    EXPECT_EQ(address.port, c.port) << c.text;
    EXPECT_EQ(address.to_string(), c.round_trip) << c.text;
  }
}

TEST(ListenAddress, RejectsWithOneLineNamingTheText) {
  EXPECT_EQ(error_of(":8188"), "--listen ':8188': write HOST:PORT, for example 127.0.0.1:8188");
  EXPECT_THAT(error_of("8188"), HasSubstr("write HOST:PORT"));
  EXPECT_THAT(error_of("localhost"), HasSubstr("write HOST:PORT"));
  EXPECT_THAT(error_of("localhost:"), HasSubstr("port '' is not a number from 0 to 65535"));
  EXPECT_THAT(error_of("localhost:65536"), HasSubstr("port '65536'"));
  EXPECT_THAT(error_of("localhost:-1"), HasSubstr("port '-1'"));
  EXPECT_THAT(error_of("localhost:80x"), HasSubstr("port '80x'"));
  EXPECT_THAT(error_of("::1:8188"), HasSubstr("put an IPv6 address in brackets"));
  EXPECT_THAT(error_of("[::1]"), HasSubstr("write HOST:PORT"));
  EXPECT_THAT(error_of("[::1:8188"), HasSubstr("missing ']'"));
  EXPECT_THAT(error_of("[127.0.0.1]:80"), HasSubstr("is not an IPv6 address"));
  EXPECT_THAT(error_of("bad host:80"), HasSubstr("'bad host' is not a host name or IP address"));
  EXPECT_THAT(error_of("a..b:80"), HasSubstr("not a host name"));
  for (const char* text : {":8188", "::1:8188", "bad host:80", "localhost:99999"}) {
    const std::string error = error_of(text);
    EXPECT_THAT(error, StartsWith(std::string("--listen '") + text + "': "));
    EXPECT_EQ(error.find('\n'), std::string::npos);
  }
}

TEST(ListenAddress, KnowsLoopbackAddresses) {
  for (const char* text : {"127.0.0.1:1", "127.8.9.10:1", "localhost:1", "LocalHost:1", "[::1]:1"})
    EXPECT_TRUE(parse_listen_address(text).loopback()) << text;
  for (const char* text : {"0.0.0.0:1", "[::]:1", "10.0.0.5:1", "example.com:1", "128.0.0.1:1",
                           "localhost.evil.com:1"})
    EXPECT_FALSE(parse_listen_address(text).loopback()) << text;
}

}  // namespace
}  // namespace ditrun::server
