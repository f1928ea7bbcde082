// libFuzzer target: what `ditrun serve` does with the bytes of one request before any model
// work: Beast's parser with the server's limits, the conversion to a plain Request, and, for
// a job body, the strict JSON object and job rules. A ditrun::Error is the expected answer
// to a bad job; any other exception, a crash, a leak or a sanitizer report is a finding. An
// accepted job must survive its ledger form: job_to_json then parse_job_object gives the
// same job line back.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "launcher/job_file.h"
#include "runtime/core/error.h"
#include "server/http_server.h"
#include "server/wire_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  const ditrun::server::ServerLimits limits;
  http::request_parser<http::string_body> parser;
  parser.header_limit(uint32_t(limits.max_header_bytes));
  parser.body_limit(1u << 20);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < size && !ec && !parser.is_done()) {
    const size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (n == 0 && !ec) break;  // needs more bytes than the input has
    used += n;
  }
  if (ec || !parser.is_done()) return 0;
  const ditrun::server::Request request = ditrun::server::to_request(parser.release(), "fuzz");
  if (request.path.find('?') != std::string::npos) std::abort();
  for (const auto& [name, value] : request.headers)
    for (char c : name)
      if (c >= 'A' && c <= 'Z') std::abort();
  try {
    const nlohmann::json object = ditrun::launcher::parse_strict_object(request.body);
    const ditrun::launcher::Job job = ditrun::launcher::parse_job_object(object, "");
    const nlohmann::json line = ditrun::launcher::job_to_json(job);
    if (ditrun::launcher::job_to_json(ditrun::launcher::parse_job_object(line, "")) != line) std::abort();
  } catch (const ditrun::Error&) {
  }
  return 0;
}
