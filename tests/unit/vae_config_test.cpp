// VAE configs: detection from the tiny reference files' names and shapes gives the official
// constructor arguments of their sidecars; the tensor layout derived from a config is exactly
// those files' tensors; bad sidecars and mismatched files fail with one line naming the cause.
#include <gtest/gtest.h>

#include "models/formats/checkpoint.h"
#include "models/pipeline/model_source.h"
#include "models/quant/weight_set.h"
#include "models/vae/vae_layout.h"
#include "models/vae/vae_source.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun::models::vae {
namespace {

std::vector<NamedShape> shapes_of(const std::string& path) {
  const formats::Checkpoint ck(path);
  return named_shapes(quant::WeightSet(ck));
}

class TinyVae : public testing::TestWithParam<std::string> {};

TEST_P(TinyVae, DetectionGivesTheSidecarConfig) {
  const std::string base = test::testdata("reference/" + GetParam());
  VaeConfig sidecar = VaeConfig::from_json(read_json_file(base + ".config.json"), "sidecar");
  const VaeConfig detected = detect_vae(shapes_of(base + ".safetensors"), base);
  sidecar.flux.resolution = detected.flux.resolution;  // unused by the model, not in the tensors
  EXPECT_EQ(detected.kind, sidecar.kind);
  EXPECT_EQ(detected.flux, sidecar.flux);
  EXPECT_EQ(detected.wan, sidecar.wan);
  EXPECT_TRUE(looks_like_vae(shapes_of(base + ".safetensors")));
}

TEST_P(TinyVae, LayoutIsExactlyTheFilesTensors) {
  const std::string base = test::testdata("reference/" + GetParam());
  const auto shapes = shapes_of(base + ".safetensors");
  const VaeConfig config = VaeConfig::from_json(read_json_file(base + ".config.json"), "sidecar");
  EXPECT_NO_THROW(check_vae_tensors(config, shapes, base));
  EXPECT_EQ(vae_tensor_layout(config).size(), shapes.size());
  // One tensor short, or one of another shape, is named.
  auto missing = shapes;
  const std::string dropped = missing[3].name;
  missing.erase(missing.begin() + 3);
  try {
    check_vae_tensors(config, missing, "file.safetensors");
    ADD_FAILURE() << "a missing tensor was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dropped), std::string::npos) << e.what();
  }
  auto reshaped = shapes;
  reshaped[0].shape[0] += 1;
  EXPECT_THROW(check_vae_tensors(config, reshaped, "file.safetensors"), Error);
}

INSTANTIATE_TEST_SUITE_P(Cases, TinyVae, testing::Values("flux-ae-tiny", "wan21-vae-tiny", "wan22-vae-tiny"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(VaeConfig, ReleasedPresetsAndStrides) {
  const VaeConfig flux = vae_preset("flux-ae"), sd35 = vae_preset("sd3.5-vae");
  EXPECT_EQ(flux.spatial_stride(), 8);
  EXPECT_EQ(flux.latent_channels(), 16);
  EXPECT_DOUBLE_EQ(sd35.flux.scale_factor, 1.5305);
  EXPECT_DOUBLE_EQ(sd35.flux.shift_factor, 0.0609);
  const VaeConfig wan21 = vae_preset("wan2.1-vae"), wan22 = vae_preset("wan2.2-vae");
  EXPECT_EQ(wan21.spatial_stride(), 8);
  EXPECT_EQ(wan21.temporal_stride(), 4);
  EXPECT_EQ(wan22.spatial_stride(), 16);
  EXPECT_EQ(wan22.latent_channels(), 48);
  EXPECT_NO_THROW(wan21.validate("preset"));
  EXPECT_NO_THROW(wan22.validate("preset"));
  EXPECT_THROW(vae_preset("sd1.5-vae"), Error);
}

TEST(VaeConfig, BadSidecarsFailNamingTheField) {
  const auto fails_with = [](const nlohmann::json& j, const std::string& part) {
    try {
      VaeConfig::from_json(j, "vae.json");
      ADD_FAILURE() << "accepted " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  fails_with({{"architecture", "flux"}}, "not a VAE");
  fails_with({{"params", nlohmann::json::object()}}, "architecture");
  fails_with({{"architecture", "flux-ae"}, {"params", {{"ch", "wide"}}}}, "params.ch");
  fails_with({{"architecture", "flux-ae"}, {"params", {{"ch", 24}}}}, "32 norm groups");
  fails_with({{"architecture", "wan21-vae"}, {"params", {{"z_dim", 8}}}}, "latent_mean");
  fails_with({{"architecture", "wan22-vae"}, {"params", {{"temperal_downsample", {true}}}}}, "temperal_downsample");
}

}  // namespace
}  // namespace ditrun::models::vae
