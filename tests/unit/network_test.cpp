// Which configs ditrun can run, and the errors for those it cannot yet or whose checkpoint
// lacks weights.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "models/arch/detect.h"
#include "models/pipeline/model_source.h"
#include "models/pipeline/network.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

using testing::HasSubstr;

std::string error_of(const std::string& preset) {
  try {
    models::make_network(arch::preset(preset, "test"));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Network, ReleasedTextToVideoAndFluxBuild) {
  for (const char* p : {"flux-dev", "flux-schnell", "wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.2-t2v-a14b"}) {
    const auto net = models::make_network(arch::preset(p, "test"));
    EXPECT_EQ(int64_t(net->blocks().size()), arch::preset(p, "test").num_blocks()) << p;
  }
}

TEST(Network, FlopsFollowTheShapes) {
  // Flux dev double block at 4096 + 512 tokens: GEMMs 2·L·(3h² + h² + 2·h·m) + modulation,
  // attention 4·L²·h.
  const auto net = models::make_network(arch::preset("flux-dev", "test"));
  const double h = 3072, m = 12288, L = 4608;
  const double want = 2 * L * (3 * h * h + h * h + 2 * h * m) + 2 * 2 * 6 * h * h + 4 * L * L * h;
  EXPECT_NEAR(net->blocks()[0]->flops({4096, 512}), want, want * 1e-12);
}

TEST(Network, UnsupportedVariantsSaySo) {
  EXPECT_THAT(error_of("wan2.1-flf2v-14b"), HasSubstr("not supported yet"));
  // Image-to-video and TI2V run (their reference cases: wan21_i2v_test, expert_pair_test,
  // reference_forward_test).
  for (const char* runs : {"wan2.1-i2v-14b", "wan2.2-ti2v-5b", "wan2.2-i2v-a14b", "wan2.2-t2v-a14b"})
    EXPECT_EQ(error_of(runs), "") << runs;
  // SD3.5 and Qwen-Image run (sd3_forward_test, qwen_image_forward_test, tests/cli/sd35.sh and
  // qwen_image.sh).
  for (const char* runs : {"sd3.5-large", "sd3.5-medium", "qwen-image"}) EXPECT_EQ(error_of(runs), "") << runs;
}

TEST(Network, MissingWeightsNameTheFileAndTensor) {
  // The schnell file under the dev config: guidance_in is missing.
  auto src = models::open_model(testdata("reference/flux-tiny-schnell.safetensors"),
                                testdata("reference/flux-tiny-schnell.config.json"));
  src.config.params = [&] {
    auto p = arch::flux_params(src.config);
    p.guidance_embed = true;
    return p;
  }();
  const auto net = models::make_network(src.config);
  try {
    models::check_weights_present(*net, *src.weights);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("flux-tiny-schnell.safetensors"));
    EXPECT_THAT(std::string(e.what()), HasSubstr("guidance_in.in_layer.weight"));
  }
}

}  // namespace
}  // namespace ditrun::test
