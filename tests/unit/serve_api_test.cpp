// The serve API without sockets: a submission that is refused leaves nothing behind.
#include "launcher/serve_api.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "models/arch/detect.h"
#include "server/base64.h"
#include "test_paths.h"

namespace ditrun::launcher {
namespace {

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  return names;
}

server::Request post(const std::string& body) {
  server::Request r;
  r.method = "POST";
  r.path = "/v1/jobs";
  r.body = body;
  return r;
}

// A cond upload is stored while the loop reaches the noise fields; a refusal there must take
// the stored cond away again.
TEST(ServeApiSubmit, RefusedNoiseFieldsRemoveTheStoredCondUpload) {
  const std::string out = test::temp_dir("serve-api");
  JobBoard board(out, 8, 4);
  const server::PathRoots roots;
  ServeApi api(board, roots, arch::preset("flux-tiny", "test"), ServeSettings{out, "test", std::nullopt, 1, false, false});
  const std::string cond = server::base64_encode("not a safetensors file, but stored before it is read");
  for (const std::string& noise_fields :
       {std::string(R"("noise_b64": 7)"), std::string(R"("noise_b64": "AAAA", "noise": "/x.safetensors")")}) {
    const server::Response r =
        api.handle(post(R"({"id": "j", "seed": 1, "cond_b64": ")" + cond + R"(", )" + noise_fields + "}"));
    EXPECT_EQ(r.status, 422) << r.body;
    EXPECT_EQ(files_in(out + "/uploads"), std::vector<std::string>{}) << noise_fields;
  }
}

// A prompt is refused at once by a server without text encoders, and queued by one with
// them (it is encoded when its turn comes).
TEST(ServeApiSubmit, PromptsNeedTheServersTextEncoders) {
  for (const bool encodes : {false, true}) {
    const std::string out = test::temp_dir("serve-api-prompt");
    JobBoard board(out, 8, 4);
    const server::PathRoots roots;
    ServeApi api(board, roots, arch::preset("flux-tiny", "test"),
                 ServeSettings{out, "test", std::nullopt, 1, false, encodes});
    const server::Response r = api.handle(post(R"({"id": "p", "seed": 1, "prompt": "a fox", "width": 64, "height": 64})"));
    EXPECT_EQ(r.status, encodes ? 201 : 422) << r.body;
    if (!encodes) EXPECT_NE(r.body.find("without text encoders"), std::string::npos) << r.body;
  }
}

}  // namespace
}  // namespace ditrun::launcher
