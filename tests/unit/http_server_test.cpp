// The HTTP server against a raw TCP client: every guarantee of server/http_server.h, with
// the exact bytes a well-behaved, a malformed, a slow or a greedy client would send.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "raw_http_client.h"
#include "runtime/core/error.h"
#include "server/http_server.h"

namespace ditrun::server {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::RawHttpClient;
using testing::RawResponse;

ServerOptions test_options() {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  return options;
}

// Echoes what it was given; a few paths do something else.
Response echo(const Request& request) {
  if (request.path == "/throw") throw std::runtime_error("boom");
  if (request.method != "GET" && request.method != "HEAD" && request.method != "POST")
    return Response::error(405, "method " + request.method + " is not allowed");
  return Response::json(200, {{"method", request.method},
                              {"path", request.path},
                              {"query", request.query},
                              {"body", request.body},
                              {"x_test", request.header("x-test")},
                              {"remote", request.remote}});
}

// A started server whose handler counts its calls.
class RunningServer {
 public:
  explicit RunningServer(ServerOptions options = test_options(), Handler handler = echo)
      : handler_(std::move(handler)),
        server_(std::move(options), [this](const Request& request) {
          calls_.fetch_add(1);
          return handler_(request);
        }) {
    server_.start();
  }
  uint16_t port() const { return server_.port(); }
  HttpServer& server() { return server_; }
  int handler_calls() const { return calls_.load(); }

 private:
  Handler handler_;
  std::atomic<int> calls_{0};
  HttpServer server_;
};

std::string get(std::string_view target, std::string_view extra_headers = "") {
  return std::string("GET ") + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" +
         std::string(extra_headers) + "\r\n";
}

std::string post(std::string_view target, std::string_view body, std::string_view extra_headers = "") {
  return std::string("POST ") + std::string(target) + " HTTP/1.1\r\nHost: test\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + std::string(extra_headers) + "\r\n" + std::string(body);
}

// Polls a condition the server reaches asynchronously (a connection counted or released).
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = 2000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

RawResponse round_trip(RawHttpClient& client, const std::string& request) {
  EXPECT_TRUE(client.send(request));
  auto response = client.read_response();
  EXPECT_TRUE(response.has_value()) << "no response to " << request;
  return response.value_or(RawResponse{});
}

void expect_json_error(const RawResponse& response, int status, const std::string& fragment) {
  EXPECT_EQ(response.status, status) << response.body;
  EXPECT_EQ(response.header("content-type"), "application/json");
  const auto json = response.json();
  EXPECT_EQ(json.at("status"), status);
  EXPECT_THAT(json.at("error").get<std::string>(), HasSubstr(fragment));
}

TEST(HttpMessage, BuildsJsonAndErrorResponses) {
  const Response ok = Response::json(201, {{"id", "x"}});
  EXPECT_EQ(ok.status, 201);
  EXPECT_EQ(ok.content_type, "application/json");
  EXPECT_EQ(ok.body, "{\"id\":\"x\"}\n");
  const Response error = Response::error(404, "job 'x' not found");
  EXPECT_EQ(error.status, 404);
  EXPECT_EQ(nlohmann::json::parse(error.body),
            (nlohmann::json{{"error", "job 'x' not found"}, {"status", 404}}));
}

TEST(HttpServer, AnswersAGetWithJsonAndTheStandardHeaders) {
  RunningServer running;
  RawHttpClient client(running.port());
  const RawResponse response = round_trip(client, get("/v1/echo?a=1&b=%20?c", "X-Test: hello\r\n"));
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-type"), "application/json");
  EXPECT_EQ(response.header("content-length"), std::to_string(response.body.size()));
  EXPECT_EQ(response.header("cache-control"), "no-store");
  EXPECT_FALSE(response.has_header("connection"));
  const auto json = response.json();
  EXPECT_EQ(json["method"], "GET");
  EXPECT_EQ(json["path"], "/v1/echo");
  EXPECT_EQ(json["query"], "a=1&b=%20?c");  // split on the first '?', nothing decoded
  EXPECT_EQ(json["x_test"], "hello");
  EXPECT_THAT(json["remote"].get<std::string>(), StartsWith("127.0.0.1:"));
}

TEST(HttpServer, KeepsAConnectionAliveAcrossRequests) {
  RunningServer running;
  RawHttpClient client(running.port());
  EXPECT_EQ(round_trip(client, get("/one")).json()["path"], "/one");
  const RawResponse second = round_trip(client, post("/two", "payload"));
  EXPECT_EQ(second.json()["body"], "payload");
  EXPECT_FALSE(client.closed_within(50ms));
  EXPECT_EQ(running.server().stats().requests, 2u);
  EXPECT_EQ(running.server().stats().open_connections, 1u);
}

TEST(HttpServer, AnswersPipelinedRequestsInOrder) {
  RunningServer running;
  RawHttpClient client(running.port());
  ASSERT_TRUE(client.send(get("/first") + post("/second", "abc") + get("/third")));
  for (const char* path : {"/first", "/second", "/third"}) {
    const auto response = client.read_response();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->json()["path"], path);
  }
}

TEST(HttpServer, ClosesAfterAnsweringAnHttp10Client) {
  RunningServer running;
  RawHttpClient client(running.port());
  const RawResponse response = round_trip(client, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.json()["path"], "/old");
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_TRUE(client.closed_within(1000ms));
}

TEST(HttpServer, HonoursConnectionCloseFromAnHttp11Client) {
  RunningServer running;
  RawHttpClient client(running.port());
  const RawResponse response = round_trip(client, get("/", "Connection: close\r\n"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_TRUE(client.closed_within(1000ms));
}

TEST(HttpServer, PassesHeadAndUnknownMethodsToTheHandler) {
  RunningServer running;
  RawHttpClient client(running.port());
  expect_json_error(round_trip(client, "BREW /pot HTTP/1.1\r\nHost: test\r\n\r\n"), 405, "BREW");

  const RawResponse full = round_trip(client, get("/same"));
  ASSERT_TRUE(client.send("HEAD /same HTTP/1.1\r\nHost: test\r\n\r\n"));
  const auto head = client.read_response(3000ms, /*to_head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  // Same length announced as for GET (the method differs, so compare the GET body's size
  // with "HEAD" in place of "GET")...
  EXPECT_EQ(std::stoul(head->header("content-length")), full.body.size() + 1);
  // ...and no body bytes: the next response starts right away.
  EXPECT_EQ(round_trip(client, get("/after")).json()["path"], "/after");
  EXPECT_EQ(running.handler_calls(), 4);
}

TEST(HttpServer, AnswersGarbageWith400AndCloses) {
  RunningServer running;
  for (const std::string& garbage :
       {std::string("HELLO\r\n\r\n"), std::string("GET / HTTP/1.1\r\nNo colon here\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
        std::string("\x16\x03\x01\x02\x00\x01\r\n\r\n", 10)}) {  // binary, then a blank line
    RawHttpClient client(running.port());
    ASSERT_TRUE(client.send(garbage));
    const auto response = client.read_response();
    ASSERT_TRUE(response) << garbage;
    expect_json_error(*response, 400, "malformed request");
    EXPECT_EQ(response->header("connection"), "close");
    EXPECT_TRUE(client.closed_within(1000ms));
  }
  EXPECT_EQ(running.handler_calls(), 0);
  EXPECT_EQ(running.server().stats().errors_4xx, 4u);
}

TEST(HttpServer, RefusesAnotherHttpVersion) {
  RunningServer running;
  RawHttpClient client(running.port());
  const RawResponse response = round_trip(client, "GET / HTTP/2.0\r\nHost: test\r\n\r\n");
  expect_json_error(response, 505, "HTTP/2.0 is not supported");
  EXPECT_TRUE(client.closed_within(1000ms));
}

TEST(HttpServer, Answers431ToAHeaderOverTheLimit) {
  ServerOptions options = test_options();
  options.limits.max_header_bytes = 1024;
  RunningServer running(options);
  RawHttpClient client(running.port());
  ASSERT_TRUE(client.send(get("/", "X-Big: " + std::string(2000, 'a') + "\r\n")));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  expect_json_error(*response, 431, "1024 bytes");
  EXPECT_TRUE(client.closed_within(1000ms));
  EXPECT_EQ(running.handler_calls(), 0);
}

TEST(HttpServer, Answers413BeforeReadingABodyOverTheLimit) {
  ServerOptions options = test_options();
  options.limits.max_body_bytes = 1000;
  RunningServer running(options);
  RawHttpClient client(running.port());
  // Only the header: the answer must not wait for a body that is never sent.
  ASSERT_TRUE(client.send("POST /big HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n"));
  const auto started = std::chrono::steady_clock::now();
  const auto response = client.read_response(1000ms);
  ASSERT_TRUE(response);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 500ms);
  expect_json_error(*response, 413, "100000 bytes is over the limit of 1000 bytes");
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_TRUE(client.closed_within(1000ms));
  EXPECT_EQ(running.handler_calls(), 0);
}

TEST(HttpServer, AcceptsABodyAtTheLimit) {
  ServerOptions options = test_options();
  options.limits.max_body_bytes = 1000;
  RunningServer running(options);
  RawHttpClient client(running.port());
  const std::string body(1000, 'b');
  EXPECT_EQ(round_trip(client, post("/ok", body)).json()["body"], body);
}

TEST(HttpServer, ReadsAChunkedBodyWithinTheLimit) {
  RunningServer running;
  RawHttpClient client(running.port());
  const RawResponse response = round_trip(
      client, "POST /chunks HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  EXPECT_EQ(response.json()["body"], "hello world");
}

TEST(HttpServer, Answers413ToAChunkedBodyOverTheLimit) {
  ServerOptions options = test_options();
  options.limits.max_body_bytes = 1000;
  RunningServer running(options);
  RawHttpClient client(running.port());
  const std::string chunk = "320\r\n" + std::string(800, 'c') + "\r\n";  // 0x320 = 800
  ASSERT_TRUE(client.send("POST /chunks HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" +
                          chunk + chunk + chunk));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  expect_json_error(*response, 413, "over the limit of 1000 bytes");
  EXPECT_TRUE(client.closed_within(1000ms));
  EXPECT_EQ(running.handler_calls(), 0);
}

TEST(HttpServer, RequiresTheBearerTokenExceptOnOpenPaths) {
  ServerOptions options = test_options();
  options.bearer_token = "s3cret-token";
  options.open_paths = {"/v1/health"};
  RunningServer running(options);

  for (const std::string& authorization :
       {std::string(""), std::string("Authorization: Bearer wrong\r\n"),
        std::string("Authorization: Bearer s3cret-toke\r\n"),
        std::string("Authorization: Bearer s3cret-token2\r\n"),
        std::string("Authorization: Basic czNjcmV0LXRva2Vu\r\n"),
        std::string("Authorization: s3cret-token\r\n")}) {
    RawHttpClient client(running.port());
    const RawResponse response = round_trip(client, get("/v1/jobs", authorization));
    expect_json_error(response, 401, "bearer token");
    EXPECT_EQ(response.header("www-authenticate"), "Bearer");
    EXPECT_TRUE(client.closed_within(1000ms));
  }
  EXPECT_EQ(running.handler_calls(), 0);

  RawHttpClient client(running.port());
  EXPECT_EQ(round_trip(client, get("/v1/jobs", "Authorization: Bearer s3cret-token\r\n")).status, 200);
  EXPECT_EQ(round_trip(client, get("/v1/jobs", "authorization: bearer s3cret-token\r\n")).status, 200);
  EXPECT_EQ(round_trip(client, get("/v1/health")).status, 200);
  EXPECT_EQ(round_trip(client, get("/v1/health?verbose=1")).status, 200);
  EXPECT_EQ(round_trip(client, get("/v1/health/")).status, 401);  // open paths match exactly
}

TEST(HttpServer, ChecksTheTokenBeforeTheBodySize) {
  ServerOptions options = test_options();
  options.bearer_token = "t";
  options.limits.max_body_bytes = 10;
  RunningServer running(options);
  RawHttpClient client(running.port());
  ASSERT_TRUE(client.send("POST /x HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n"));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 401);
}

TEST(HttpServer, Sends100ContinueBeforeReadingTheBody) {
  RunningServer running;
  RawHttpClient client(running.port());
  ASSERT_TRUE(client.send(
      "POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  const auto interim = client.read_response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.send("12345"));
  const auto final_response = client.read_response();
  ASSERT_TRUE(final_response);
  EXPECT_EQ(final_response->status, 200);
  EXPECT_EQ(final_response->json()["body"], "12345");
}

TEST(HttpServer, RefusesAnOversizedExpectContinueWithoutTheContinue) {
  ServerOptions options = test_options();
  options.limits.max_body_bytes = 10;
  RunningServer running(options);
  RawHttpClient client(running.port());
  ASSERT_TRUE(client.send(
      "POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"));
  const auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
}

TEST(HttpServer, Answers500WhenTheHandlerThrowsAndKeepsServing) {
  RunningServer running;
  RawHttpClient client(running.port());
  const RawResponse failed = round_trip(client, get("/throw"));
  expect_json_error(failed, 500, "internal error: boom");
  EXPECT_EQ(failed.json()["error"], "internal error: boom");
  EXPECT_EQ(round_trip(client, get("/fine")).status, 200);  // same connection still usable
  RawHttpClient another(running.port());
  EXPECT_EQ(round_trip(another, get("/fine")).status, 200);
  const auto stats = running.server().stats();
  EXPECT_EQ(stats.requests, 3u);
  EXPECT_EQ(stats.errors_5xx, 1u);
  EXPECT_EQ(stats.errors_4xx, 0u);
}

TEST(HttpServer, Answers500WhenTheHandlerReturnsAnImpossibleStatus) {
  RunningServer running(test_options(), [](const Request&) { return Response::error(42, "?"); });
  RawHttpClient client(running.port());
  expect_json_error(round_trip(client, get("/")), 500, "status 42");
}

TEST(HttpServer, SendsTheHandlersExtraHeadersButKeepsTheFraming) {
  RunningServer running(test_options(), [](const Request&) {
    Response response = Response::json(201, {{"id", "job-1"}});
    response.headers = {{"Location", "/v1/jobs/job-1"},
                        {"Content-Length", "999"},
                        {"Connection", "close"},
                        {"X-Injected", "a\r\nSet-Cookie: evil=1"}};
    return response;
  });
  RawHttpClient client(running.port());
  const RawResponse response = round_trip(client, get("/"));
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.header("location"), "/v1/jobs/job-1");
  EXPECT_EQ(response.header("content-length"), std::to_string(response.body.size()));
  EXPECT_FALSE(response.has_header("connection"));
  EXPECT_FALSE(response.has_header("x-injected"));
  EXPECT_FALSE(response.has_header("set-cookie"));
  EXPECT_EQ(round_trip(client, get("/")).status, 201);  // the connection stayed open
}

TEST(HttpServer, ClosesAnIdleKeepAliveConnection) {
  ServerOptions options = test_options();
  options.limits.idle_timeout = 200ms;
  RunningServer running(options);
  RawHttpClient client(running.port());
  EXPECT_EQ(round_trip(client, get("/")).status, 200);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.closed_within(1500ms));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 150ms);
  EXPECT_TRUE(eventually([&] { return running.server().stats().open_connections == 0; }));

  RawHttpClient silent(running.port());  // never sends a byte
  EXPECT_TRUE(silent.closed_within(1500ms));
}

TEST(HttpServer, Answers408ToARequestNotCompleteInTime) {
  ServerOptions options = test_options();
  options.limits.request_timeout = 300ms;
  options.limits.idle_timeout = 5000ms;
  RunningServer running(options);
  RawHttpClient client(running.port());
  ASSERT_TRUE(client.send("GET /slow HTTP/1.1\r\nHost: te"));  // half a header, then nothing
  const auto started = std::chrono::steady_clock::now();
  const auto response = client.read_response(1500ms);
  ASSERT_TRUE(response);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);
  expect_json_error(*response, 408, "300 ms");
  EXPECT_TRUE(client.closed_within(1000ms));
  EXPECT_EQ(running.handler_calls(), 0);
}

TEST(HttpServer, Answers408ToABodyNotCompleteInTime) {
  ServerOptions options = test_options();
  options.limits.request_timeout = 300ms;
  RunningServer running(options);
  RawHttpClient client(running.port());
  ASSERT_TRUE(client.send("POST /slow HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n12345"));
  const auto response = client.read_response(1500ms);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 408);
  EXPECT_TRUE(client.closed_within(1000ms));
}

TEST(HttpServer, ASlowClientDoesNotBlockOthers) {
  ServerOptions options = test_options();
  options.threads = 1;
  options.limits.request_timeout = 1000ms;
  RunningServer running(options);
  RawHttpClient slow(running.port());
  ASSERT_TRUE(slow.send("GET / HTTP/1.1\r\n"));
  RawHttpClient fast(running.port());
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(round_trip(fast, get("/")).status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 500ms);
}

TEST(HttpServer, TurnsAwayConnectionsOverTheLimitWith503) {
  ServerOptions options = test_options();
  options.limits.max_connections = 2;
  RunningServer running(options);
  RawHttpClient first(running.port());
  RawHttpClient second(running.port());
  ASSERT_TRUE(eventually([&] { return running.server().stats().open_connections == 2; }));

  RawHttpClient third(running.port());
  const auto refused = third.read_response();  // answered without sending anything
  ASSERT_TRUE(refused);
  expect_json_error(*refused, 503, "limit of 2 open connections");
  EXPECT_EQ(refused->header("retry-after"), "1");
  EXPECT_EQ(refused->header("connection"), "close");
  EXPECT_TRUE(third.closed_within(1000ms));
  EXPECT_EQ(running.server().stats().rejected_connections, 1u);

  EXPECT_EQ(round_trip(first, get("/")).status, 200);
  EXPECT_EQ(round_trip(second, get("/")).status, 200);
  first.close();
  ASSERT_TRUE(eventually([&] { return running.server().stats().open_connections == 1; }));
  RawHttpClient fourth(running.port());
  EXPECT_EQ(round_trip(fourth, get("/")).status, 200);
  EXPECT_EQ(running.server().stats().rejected_connections, 1u);
}

TEST(HttpServer, AnswersManyConcurrentClients) {
  constexpr int kClients = 32, kRequestsEach = 20;
  RunningServer running;
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      RawHttpClient client(running.port());
      for (int r = 0; r < kRequestsEach; ++r) {
        const std::string body = std::to_string(c) + "/" + std::to_string(r);
        if (!client.send(post("/concurrent", body))) return;
        const auto response = client.read_response();
        if (response && response->status == 200 && response->json()["body"] == body) ++answered;
      }
    });
  }
  for (auto& thread : clients) thread.join();
  EXPECT_EQ(answered.load(), kClients * kRequestsEach);
  const auto stats = running.server().stats();
  EXPECT_EQ(stats.requests, uint64_t{kClients * kRequestsEach});
  EXPECT_EQ(stats.errors_4xx + stats.errors_5xx + stats.rejected_connections, 0u);
  EXPECT_TRUE(eventually([&] { return running.server().stats().open_connections == 0; }));
}

TEST(HttpServer, StopClosesOpenConnectionsAndIsIdempotent) {
  RunningServer running;
  RawHttpClient client(running.port());
  EXPECT_EQ(round_trip(client, get("/")).status, 200);
  running.server().stop();
  EXPECT_TRUE(client.closed_within(1000ms));
  running.server().stop();
  EXPECT_EQ(running.server().stats().open_connections, 0u);
}

TEST(HttpServer, StopsWithoutEverStarting) {
  HttpServer server(test_options(), echo);
  EXPECT_GT(server.port(), 0);
  server.stop();
}

TEST(HttpServer, FailsToListenOnAPortInUse) {
  RunningServer running;
  ServerOptions options = test_options();
  options.port = running.port();
  try {
    HttpServer second(options, echo);
    FAIL() << "a second server listened on port " << running.port();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), StartsWith("cannot listen on 127.0.0.1:" + std::to_string(running.port()) + ": "));
  }
}

TEST(HttpServer, FailsToListenOnAnUnknownHost) {
  ServerOptions options = test_options();
  options.host = "192.0.2.1";  // TEST-NET-1: not an address of this machine
  EXPECT_THROW(HttpServer(options, echo), Error);
}

TEST(HttpServer, RefusesAnEmptyToken) {
  ServerOptions options = test_options();
  options.bearer_token = "";
  EXPECT_THROW(HttpServer(options, echo), Error);
}

}  // namespace
}  // namespace ditrun::server
