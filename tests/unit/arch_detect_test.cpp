// Architecture detection against the reference files (tensors written by the official code's
// parameter sets), sidecar handling, presets and the JSON form of configs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "models/arch/detect.h"
#include "models/arch/layout.h"
#include "models/formats/checkpoint.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun {
namespace {

// The reference cases (testdata/reference) and their tensors as NamedShapes.
namespace arch_cases {

struct Case {
  std::string file;    // under testdata/reference
  std::string config;  // the case's sidecar
  arch::Family family;
  bool gguf;
};

std::vector<Case> reference_cases() {
  return {
      {"flux-tiny-dev.safetensors", "flux-tiny-dev.config.json", arch::Family::Flux, false},
      {"flux-tiny-dev-Q8_0.gguf", "flux-tiny-dev.config.json", arch::Family::Flux, true},
      {"flux-tiny-dev-Q4_K.gguf", "flux-tiny-dev.config.json", arch::Family::Flux, true},
      {"flux-tiny-schnell.safetensors", "flux-tiny-schnell.config.json", arch::Family::Flux, false},
      {"wan21-tiny-t2v.safetensors", "wan21-tiny-t2v.config.json", arch::Family::Wan, false},
      {"wan21-tiny-t2v-Q5_0.gguf", "wan21-tiny-t2v.config.json", arch::Family::Wan, true},
  };
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.file; }

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.file;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

std::vector<arch::NamedShape> named_shapes(const formats::Checkpoint& ck) {
  std::vector<arch::NamedShape> out;
  for (const auto& t : ck.tensors()) out.push_back({t.name, t.shape});
  return out;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

}  // namespace arch_cases

using arch::Family;
using nlohmann::json;
using ::testing::HasSubstr;

class ArchReference : public ::testing::TestWithParam<arch_cases::Case> {};

TEST_P(ArchReference, DetectsFamilyAndDerivableParamsWithoutSidecar) {
  const auto& c = GetParam();
  formats::Checkpoint ck(test::testdata("reference/" + c.file));
  const auto cfg = arch::detect_model(arch_cases::named_shapes(ck), ck.gguf_architecture(), c.file);
  EXPECT_EQ(cfg.family, c.family);
  EXPECT_EQ(cfg.variant, std::string(arch::family_name(c.family)) + "-custom");

  const json sidecar = arch_cases::read_json(test::testdata("reference/" + c.config));
  const json want = sidecar["params"];
  const json got = cfg.to_json()["params"];
  for (const auto& [key, value] : want.items()) {
    const bool assumed = std::find(cfg.assumed.begin(), cfg.assumed.end(), key) != cfg.assumed.end();
    if (!assumed) {
      EXPECT_EQ(got.at(key), value) << c.file << " params." << key;
    }
  }
  if (c.family == Family::Flux) {
    EXPECT_EQ(std::get<arch::FluxParams>(cfg.params).guidance_embed, c.file.find("schnell") == std::string::npos);
    // The split for a head dim other than 128 is a guess, and reported as one.
    EXPECT_THAT(cfg.assumed, ::testing::ElementsAre("axes_dim"));
  } else {
    EXPECT_EQ(std::get<arch::WanParams>(cfg.params).model_type, "t2v");
    EXPECT_THAT(cfg.assumed, ::testing::UnorderedElementsAre("num_heads", "text_len"));
  }
}

TEST_P(ArchReference, SidecarGivesTheReferenceParams) {
  const auto& c = GetParam();
  formats::Checkpoint ck(test::testdata("reference/" + c.file));
  const auto detected = arch::detect_model(arch_cases::named_shapes(ck), ck.gguf_architecture(), c.file);
  const json sidecar = arch_cases::read_json(test::testdata("reference/" + c.config));
  const auto cfg = arch::apply_sidecar(detected, sidecar, c.config);
  const auto expected = arch::ModelConfig::from_json(sidecar, c.config);
  EXPECT_EQ(cfg.params, expected.params);
  EXPECT_EQ(cfg.family, expected.family);
  EXPECT_TRUE(cfg.assumed.empty());
  EXPECT_EQ(cfg.sampling.steps, 3);
  if (c.family == Family::Flux) {
    EXPECT_EQ(cfg.sampling.guidance, 3.5);
    EXPECT_EQ(cfg.sampling.shift, c.file.find("schnell") == std::string::npos ? "flux-dynamic" : "none");
  } else {
    EXPECT_EQ(cfg.sampling.cfg, 5.0);
    EXPECT_EQ(std::stod(cfg.sampling.shift), 5.0);
  }
  EXPECT_NO_THROW(arch::check_tensors_match(cfg, arch_cases::named_shapes(ck), c.file));
}

INSTANTIATE_TEST_SUITE_P(Cases, ArchReference, ::testing::ValuesIn(arch_cases::reference_cases()), arch_cases::case_name);

std::vector<arch::NamedShape> shapes_of(const std::vector<arch::TensorSpec>& layout, bool trim_leading_ones) {
  std::vector<arch::NamedShape> out;
  for (const auto& t : layout) {
    formats::Shape s = t.shape;
    while (trim_leading_ones && s.size() > 1 && s[0] == 1) s.erase(s.begin());
    out.push_back({t.name, s});
  }
  return out;
}

// Releases that share every shape with an earlier one are detected as the earlier one.
std::string expected_detection(const std::string& preset) {
  if (preset == "wan2.2-t2v-a14b") return "wan2.1-t2v-14b";
  if (preset == "flux-tiny") return "flux-custom";
  if (preset == "wan-tiny") return "wan-custom";
  return preset;
}

TEST(ArchPresets, DetectionOfEveryPresetLayoutRoundTrips) {
  for (const auto& name : arch::preset_names()) {
    const auto p = arch::preset(name, "test");
    for (bool trim : {false, true}) {
      const auto shapes = shapes_of(arch::tensor_layout(p), trim);
      const auto got = arch::detect_model(shapes, std::string(arch::family_name(p.family)), name);
      EXPECT_EQ(got.variant, expected_detection(name)) << name << (trim ? " (trimmed)" : "");
      EXPECT_EQ(got.family, p.family) << name;
      if (!got.variant.ends_with("-custom")) {
        EXPECT_EQ(got.params, p.params) << name;
        EXPECT_TRUE(got.assumed.empty()) << name;
      }
      EXPECT_NO_THROW(arch::check_tensors_match(got, shapes, name)) << name;
    }
  }
}

TEST(ArchPresets, TinyPresetsDetectWithTheirDerivableParams) {
  const auto flux = arch::preset("flux-tiny", "test");
  const auto got = arch::detect_model(shapes_of(arch::tensor_layout(flux), false), std::nullopt, "flux-tiny");
  EXPECT_EQ(got.params, flux.params);  // D = 64: the guessed axes [8, 28, 28] are flux-tiny's
  EXPECT_THAT(got.assumed, ::testing::ElementsAre("axes_dim"));

  const auto wan = arch::preset("wan-tiny", "test");
  auto wan_got = arch::detect_model(shapes_of(arch::tensor_layout(wan), false), std::nullopt, "wan-tiny");
  EXPECT_EQ(std::get<arch::WanParams>(wan_got.params).dim, 96);
  wan_got = arch::apply_sidecar(wan_got, json{{"params", {{"num_heads", 2}, {"text_len", 12}}}}, "sidecar");
  EXPECT_EQ(wan_got.params, wan.params);
  EXPECT_TRUE(wan_got.assumed.empty());
}

TEST(ArchPresets, SamplingDefaults) {
  const auto dev = arch::preset("flux-dev", "t");
  EXPECT_EQ(dev.sampling, (arch::SamplingDefaults{28, "flux-dynamic", 3.5, 1.0, 0, 1, "euler"}));
  EXPECT_EQ(arch::preset("flux-schnell", "t").sampling, (arch::SamplingDefaults{4, "none", 0.0, 1.0, 0, 1, "euler"}));
  EXPECT_EQ(arch::preset("wan2.1-t2v-14b", "t").sampling, (arch::SamplingDefaults{50, "5.0", 0.0, 5.0, 0, 1, "unipc"}));
  EXPECT_EQ(arch::preset("wan2.1-i2v-14b", "t").sampling.steps, 40);
  EXPECT_EQ(arch::preset("sd3.5-large", "t").sampling, (arch::SamplingDefaults{40, "3.0", 0.0, 4.5, 0, 1, "euler"}));
  // Wan 2.2 A14B (wan/configs/wan_t2v_A14B.py, wan_i2v_A14B.py): the boundary and the guide
  // pair, high-noise first here ([low, high] in the configs).
  EXPECT_EQ(arch::preset("wan2.2-t2v-a14b", "t").sampling, (arch::SamplingDefaults{40, "12.0", 0.0, 4.0, 0.875, 3.0, "unipc"}));
  EXPECT_EQ(arch::preset("wan2.2-i2v-a14b", "t").sampling, (arch::SamplingDefaults{40, "5.0", 0.0, 3.5, 0.900, 3.5, "unipc"}));
  for (const auto& name : arch::preset_names()) EXPECT_NO_THROW(arch::validate(arch::preset(name, "t"), name));
}

TEST(ArchPresets, NamesAndUnknown) {
  const auto names = arch::preset_names();
  for (const char* n : {"flux-dev", "flux-schnell", "wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "wan2.1-i2v-14b",
                        "wan2.1-flf2v-14b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b", "wan2.2-i2v-a14b", "qwen-image",
                        "sd3.5-large", "sd3.5-medium", "flux-tiny", "wan-tiny"})
    EXPECT_THAT(names, ::testing::Contains(n));
  try {
    arch::preset("flux-pro", "--model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("--model: unknown model preset 'flux-pro'"));
  }
}

TEST(ArchConfigJson, WanSamplingKeysAndTheirErrors) {
  const auto base = arch::preset("wan2.1-t2v-14b", "t");
  const auto with = [&](const json& sampling) { return arch::apply_sidecar(base, json{{"sampling", sampling}}, "cfg.json"); };
  const auto a14b = with(json{{"sample_solver", "dpm++"}, {"boundary", 0.9}, {"guide_scale", {3.0, 4.0}},
                              {"guide_scale_order", "[low_noise, high_noise]"}, {"num_train_timesteps", 1000}});
  EXPECT_EQ(a14b.sampling.sampler, "dpm++");
  EXPECT_DOUBLE_EQ(a14b.sampling.boundary, 0.9);
  EXPECT_DOUBLE_EQ(a14b.sampling.cfg, 4.0);
  EXPECT_DOUBLE_EQ(a14b.sampling.cfg_low, 3.0);
  EXPECT_DOUBLE_EQ(with(json{{"boundary_timestep", 875}}).sampling.boundary, 0.875);
  EXPECT_DOUBLE_EQ(with(json{{"guide_scale", 5.5}}).sampling.cfg_low, 5.5);
  const auto fails = [&](const json& sampling, const std::string& message) {
    try {
      with(sampling);
      ADD_FAILURE() << "expected an error for " << sampling.dump();
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(message));
    }
  };
  fails(json{{"boundary", 1.0}}, "cfg.json: sampling.boundary: 1 is outside (0, 1)");
  fails(json{{"boundary", 0.875}, {"boundary_timestep", 900}}, "sampling.boundary_timestep: 900 is not boundary x 1000");
  fails(json{{"guide_scale", {3.0, 4.0, 5.0}}}, "sampling.guide_scale: expected a number or [low_noise, high_noise]");
  fails(json{{"guide_scale_order", "[high_noise, low_noise]"}}, "ditrun reads guide_scale as [low_noise, high_noise]");
  fails(json{{"num_train_timesteps", 1024}}, "sampling.num_train_timesteps: 1024");
}

TEST(ArchConfigJson, RoundTripsEveryPreset) {
  for (const auto& name : arch::preset_names()) {
    auto p = arch::preset(name, "t");
    p.assumed = {"axes_dim"};
    const json j = p.to_json();
    EXPECT_EQ(j["architecture"], arch::family_name(p.family));
    const auto back = arch::ModelConfig::from_json(json::parse(j.dump()), name);
    EXPECT_EQ(back, p) << name << ": " << j.dump();
  }
}

TEST(ArchConfigJson, SidecarSchemaWithoutVariantNamesTheRelease) {
  json j = arch::preset("wan2.1-t2v-1.3b", "t").to_json();
  j.erase("variant");
  j.erase("sampling");
  const auto c = arch::ModelConfig::from_json(j, "x.json");
  EXPECT_EQ(c.variant, "wan2.1-t2v-1.3b");
  EXPECT_EQ(c.sampling.steps, 50);
  const auto d = arch::ModelConfig::from_json(json{{"architecture", "flux"}, {"sampling", {{"steps", 20}}}}, "y.json");
  EXPECT_EQ(d.variant, "flux-dev");
  EXPECT_EQ(d.sampling.steps, 20);
  EXPECT_EQ(d.sampling.guidance, 3.5);
}

std::string error_of(const json& j, const std::string& source = "bad.json") {
  try {
    arch::ModelConfig::from_json(j, source);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ArchConfigJson, BadSidecarsGiveOneLineErrors) {
  const json good = arch_cases::read_json(test::testdata("reference/flux-tiny-dev.config.json"));
  auto with = [&](const std::string& section, const std::string& key, const json& v) {
    json j = good;
    j[section][key] = v;
    return j;
  };
  EXPECT_THAT(error_of(json::array()), HasSubstr("bad.json: model config: expected a JSON object"));
  EXPECT_THAT(error_of(json{{"params", json::object()}}), HasSubstr("bad.json: model config: missing \"architecture\""));
  EXPECT_THAT(error_of(json{{"architecture", "sdxl"}}), HasSubstr("bad.json: architecture: 'sdxl' is not supported"));
  EXPECT_THAT(error_of(with("params", "hidden_sise", 128)), HasSubstr("bad.json: params.hidden_sise: not a flux parameter"));
  EXPECT_THAT(error_of(with("params", "num_heads", "4")), HasSubstr("bad.json: params.num_heads: expected an integer"));
  EXPECT_THAT(error_of(with("params", "num_heads", 3)), HasSubstr("bad.json: params.num_heads: 3 heads do not divide"));
  EXPECT_THAT(error_of(with("params", "axes_dim", json::array({4, 14, 12}))),
              HasSubstr("bad.json: params.axes_dim: axis widths sum to 30, but the head dim is 32"));
  EXPECT_THAT(error_of(with("params", "qkv_bias", 1)), HasSubstr("bad.json: params.qkv_bias: expected true or false"));
  EXPECT_THAT(error_of(with("sampling", "steps", "three")), HasSubstr("bad.json: sampling.steps: expected a number"));
  EXPECT_THAT(error_of(with("sampling", "steps", 2.5)), HasSubstr("bad.json: sampling.steps: expected a positive whole"));
  EXPECT_THAT(error_of(with("sampling", "shift", "dynamic")), HasSubstr("bad.json: sampling.shift: 'dynamic' is not"));
  EXPECT_THAT(error_of(with("sampling", "cfg", "-1")), HasSubstr("bad.json: sampling.cfg: must be positive"));
  json wan = arch_cases::read_json(test::testdata("reference/wan21-tiny-t2v.config.json"));
  wan["params"]["model_type"] = "s2v";
  EXPECT_THAT(error_of(wan), HasSubstr("bad.json: params.model_type: 's2v' is not one of"));
  for (const auto& msg : {error_of(with("params", "depth", "x")), error_of(json{{"architecture", 3}})})
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(ArchSidecar, FamilyMustAgreeAndOverridesApply) {
  const auto base = arch::preset("flux-dev", "t");
  try {
    arch::apply_sidecar(base, json{{"architecture", "wan"}}, "side.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("side.json: architecture: the sidecar says 'wan' but the checkpoint is a flux model"));
  }
  EXPECT_THROW(arch::apply_sidecar(base, json{{"params", {{"dim", 5}}}}, "side.json"), Error);
  const auto c = arch::apply_sidecar(base, json{{"params", {{"guidance_embed", false}}}}, "side.json");
  EXPECT_EQ(c.variant, "flux-schnell");
  EXPECT_EQ(c.sampling.steps, 4);  // the newly matched release's defaults
  const auto d = arch::apply_sidecar(base, json{{"sampling", {{"steps", "12"}, {"timestep", "1000*sigma"}}}}, "s");
  EXPECT_EQ(d.sampling.steps, 12);
  EXPECT_EQ(d.variant, "flux-dev");
}

std::string detect_error(const std::vector<arch::NamedShape>& t, std::optional<std::string> gguf = std::nullopt) {
  try {
    arch::detect_model(t, gguf, "m.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ArchDetect, Failures) {
  EXPECT_THAT(detect_error({}), HasSubstr("m.safetensors: cannot detect the architecture: the checkpoint has no"));
  EXPECT_THAT(detect_error({{"encoder.conv_in.weight", {128, 3, 3, 3}}}),
              HasSubstr("m.safetensors: cannot detect the architecture: no Flux"));
  EXPECT_THAT(detect_error({{"single_transformer_blocks.0.attn.to_q.weight", {3072, 3072}}}),
              HasSubstr("diffusers-format"));
  const auto flux = shapes_of(arch::tensor_layout(arch::preset("flux-tiny", "t")), false);
  EXPECT_THAT(detect_error(flux, "wan"), HasSubstr("GGUF general.architecture says 'wan'"));
  EXPECT_THAT(detect_error(flux, "lumina2"), HasSubstr("general.architecture 'lumina2' is not supported"));
  auto broken = flux;
  std::erase_if(broken, [](const auto& t) { return t.name == "img_in.weight"; });
  EXPECT_THAT(detect_error(broken), HasSubstr("cannot detect the architecture: flux model: checkpoint lacks tensor 'img_in.weight'"));
  auto gap = flux;
  std::erase_if(gap, [](const auto& t) { return t.name.starts_with("double_blocks.0."); });
  EXPECT_THAT(detect_error(gap), HasSubstr("block 0 is missing"));
}

TEST(ArchDetect, WanVariantsFromImageBranch) {
  for (const char* name : {"wan2.1-i2v-14b", "wan2.1-flf2v-14b", "wan2.2-i2v-a14b", "wan2.2-ti2v-5b"}) {
    const auto p = arch::preset(name, "t");
    const auto got = arch::detect_model(shapes_of(arch::tensor_layout(p), true), "wan", name);
    EXPECT_EQ(std::get<arch::WanParams>(got.params).model_type, std::get<arch::WanParams>(p.params).model_type) << name;
  }
}

TEST(ArchCheckTensors, ReportsMismatches) {
  const auto cfg = arch::preset("flux-tiny", "t");
  auto shapes = shapes_of(arch::tensor_layout(cfg), false);
  auto extra = shapes;
  extra.push_back({"double_blocks.0.img_attn.qkv.scale_weight", {1}});  // scaled-fp8 side tensor: fine
  EXPECT_NO_THROW(arch::check_tensors_match(cfg, extra, "f"));
  extra.push_back({"lora_unet.foo", {1}});
  EXPECT_THROW(arch::check_tensors_match(cfg, extra, "f"), Error);
  auto wrong = shapes;
  wrong[0].shape = {128, 32};
  try {
    arch::check_tensors_match(cfg, wrong, "f.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("f.gguf: tensor 'img_in.weight' has shape [128, 32], but flux-custom needs [128, 64]"));
  }
}

}  // namespace
}  // namespace ditrun
