// tensor_layout against the reference files (names, shapes, order) and the parameter counts
// of the released models in models.md; placement units and the GGUF policy lists.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "models/arch/detect.h"
#include "models/arch/layout.h"
#include "models/formats/checkpoint.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun {
namespace {

using nlohmann::json;

struct RefCase {
  std::string file, config;
  bool gguf;
};

void PrintTo(const RefCase& c, std::ostream* os) { *os << c.file; }

std::string ref_case_name(const ::testing::TestParamInfo<RefCase>& info) {
  std::string n = info.param.file;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

arch::ModelConfig reference_config(const RefCase& c) {
  std::ifstream in(test::testdata("reference/" + c.config));
  return arch::ModelConfig::from_json(json::parse(in), c.config);
}

class LayoutReference : public ::testing::TestWithParam<RefCase> {};

TEST_P(LayoutReference, MatchesTheFileInNamesShapesAndOrder) {
  const auto& c = GetParam();
  formats::Checkpoint ck(test::testdata("reference/" + c.file));
  const auto layout = arch::tensor_layout(reference_config(c));
  const auto& tensors = ck.tensors();
  ASSERT_EQ(layout.size(), tensors.size());
  for (size_t i = 0; i < layout.size(); ++i) {
    EXPECT_EQ(layout[i].name, tensors[i].name) << "tensor #" << i;
    if (c.gguf) {  // GGUF may trim leading size-1 dims; the element count must still agree
      EXPECT_EQ(formats::element_count(layout[i].shape), formats::element_count(tensors[i].shape)) << layout[i].name;
    } else {
      EXPECT_EQ(layout[i].shape, tensors[i].shape) << layout[i].name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, LayoutReference,
                         ::testing::Values(RefCase{"flux-tiny-dev.safetensors", "flux-tiny-dev.config.json", false},
                                           RefCase{"flux-tiny-dev-Q8_0.gguf", "flux-tiny-dev.config.json", true},
                                           RefCase{"flux-tiny-dev-Q4_K.gguf", "flux-tiny-dev.config.json", true},
                                           RefCase{"flux-tiny-schnell.safetensors", "flux-tiny-schnell.config.json",
                                                   false},
                                           RefCase{"wan21-tiny-t2v.safetensors", "wan21-tiny-t2v.config.json", false},
                                           RefCase{"wan21-tiny-t2v-Q5_0.gguf", "wan21-tiny-t2v.config.json", true}),
                         ref_case_name);

// Element counts per placement unit.
std::map<std::string, int64_t> unit_sizes(const arch::ModelConfig& c) {
  std::map<std::string, int64_t> sizes;
  for (const auto& t : arch::tensor_layout(c)) sizes[arch::placement_unit(c, t.name)] += formats::element_count(t.shape);
  return sizes;
}

TEST(LayoutSizes, ReleaseTotalsMatchModelsMd) {
  const std::map<std::string, int64_t> totals = {
      {"flux-dev", 11'901'408'320},       {"flux-schnell", 11'891'178'560},   {"wan2.1-t2v-1.3b", 1'418'996'800},
      {"wan2.1-t2v-14b", 14'288'491'584}, {"wan2.1-i2v-14b", 16'394'878'784}, {"wan2.1-flf2v-14b", 16'395'536'704},
      {"wan2.2-t2v-a14b", 14'288'491'584}, {"wan2.2-i2v-a14b", 14'288'901'184}, {"wan2.2-ti2v-5b", 4'999'787'712},
      {"qwen-image", 20'430'401'088},     {"sd3.5-large", 8'146'280'768},     {"sd3.5-medium", 2'469'663'936},
  };
  for (const auto& [name, total] : totals) EXPECT_EQ(arch::parameter_count(arch::preset(name, "t")), total) << name;
}

TEST(LayoutSizes, UnitSizesMatchModelsMd) {
  auto dev = unit_sizes(arch::preset("flux-dev", "t"));
  EXPECT_EQ(dev["double_blocks.0"], 339'831'296);
  EXPECT_EQ(dev["double_blocks.18"], 339'831'296);
  EXPECT_EQ(dev["single_blocks.37"], 141'591'808);
  EXPECT_EQ(dev["prologue"], 45'047'808);
  EXPECT_EQ(dev["epilogue"], 19'077'184);
  EXPECT_EQ(unit_sizes(arch::preset("flux-schnell", "t"))["prologue"], 34'818'048);

  EXPECT_EQ(unit_sizes(arch::preset("wan2.1-t2v-14b", "t"))["blocks.7"], 351'394'304);
  EXPECT_EQ(unit_sizes(arch::preset("wan2.1-t2v-1.3b", "t"))["blocks.0"], 46'440'704);
  EXPECT_EQ(unit_sizes(arch::preset("wan2.1-i2v-14b", "t"))["blocks.39"], 403'838'464);
  EXPECT_EQ(unit_sizes(arch::preset("wan2.2-ti2v-5b", "t"))["blocks.29"], 163'656'704);

  auto qwen = unit_sizes(arch::preset("qwen-image", "t"));
  EXPECT_EQ(qwen["transformer_blocks.59"], 339'831'296);
  EXPECT_EQ(qwen["prologue"], 21'446'144);
  EXPECT_EQ(qwen["epilogue"], 19'077'184);

  auto large = unit_sizes(arch::preset("sd3.5-large", "t"));
  EXPECT_EQ(large["joint_blocks.0"], 212'999'680);
  EXPECT_EQ(large["joint_blocks.37"], 136'085'248);
  EXPECT_EQ(large["prologue"], 117'217'536);
  EXPECT_EQ(large["epilogue"], 11'989'824);
  auto medium = unit_sizes(arch::preset("sd3.5-medium", "t"));
  EXPECT_EQ(medium["joint_blocks.12"], 101'506'944);
  EXPECT_EQ(medium["joint_blocks.13"], 84'980'992);
  EXPECT_EQ(medium["joint_blocks.23"], 54'294'784);
  EXPECT_EQ(medium["prologue"], 241'148'928);
  EXPECT_EQ(medium["epilogue"], 4'820'032);
}

TEST(LayoutShapes, PyTorchShapesOfSpecialTensors) {
  std::map<std::string, arch::TensorSpec> wan;
  for (auto& t : arch::tensor_layout(arch::preset("wan2.1-flf2v-14b", "t"))) wan.emplace(t.name, t);
  EXPECT_EQ(wan.at("patch_embedding.weight").shape, (formats::Shape{5120, 36, 1, 2, 2}));
  EXPECT_EQ(wan.at("patch_embedding.weight").role, arch::TensorRole::PatchEmbed);
  EXPECT_EQ(wan.at("blocks.3.modulation").shape, (formats::Shape{1, 6, 5120}));
  EXPECT_EQ(wan.at("blocks.3.modulation").role, arch::TensorRole::Modulation);
  EXPECT_EQ(wan.at("head.modulation").shape, (formats::Shape{1, 2, 5120}));
  EXPECT_EQ(wan.at("img_emb.emb_pos").shape, (formats::Shape{1, 514, 1280}));
  EXPECT_EQ(wan.at("blocks.0.cross_attn.norm_k_img.weight").role, arch::TensorRole::NormScale);
  EXPECT_EQ(wan.at("blocks.0.ffn.0.weight").role, arch::TensorRole::LinearWeight);
  EXPECT_EQ(wan.at("blocks.0.ffn.0.bias").role, arch::TensorRole::Bias);

  std::map<std::string, arch::TensorSpec> sd3;
  for (auto& t : arch::tensor_layout(arch::preset("sd3.5-medium", "t"))) sd3.emplace(t.name, t);
  EXPECT_EQ(sd3.at("pos_embed").shape, (formats::Shape{1, 147456, 1536}));
  EXPECT_EQ(sd3.at("x_embedder.proj.weight").shape, (formats::Shape{1536, 16, 2, 2}));
  EXPECT_EQ(sd3.at("joint_blocks.12.x_block.adaLN_modulation.1.weight").shape, (formats::Shape{9 * 1536, 1536}));
  EXPECT_EQ(sd3.at("joint_blocks.23.context_block.adaLN_modulation.1.weight").shape, (formats::Shape{2 * 1536, 1536}));
  EXPECT_EQ(sd3.count("joint_blocks.13.x_block.attn2.qkv.weight"), 0u);
  EXPECT_EQ(sd3.count("joint_blocks.23.context_block.attn.proj.weight"), 0u);
  EXPECT_EQ(sd3.count("joint_blocks.23.context_block.mlp.fc1.weight"), 0u);
}

TEST(LayoutUnits, ExecutionOrderAndAssignment) {
  const auto tiny = arch::preset("flux-tiny", "t");
  EXPECT_THAT(arch::placement_units(tiny),
              ::testing::ElementsAre("prologue", "double_blocks.0", "double_blocks.1", "single_blocks.0",
                                     "single_blocks.1", "epilogue"));
  EXPECT_EQ(arch::placement_unit(tiny, "guidance_in.in_layer.weight"), "prologue");
  EXPECT_EQ(arch::placement_unit(tiny, "double_blocks.1.txt_mlp.2.bias"), "double_blocks.1");
  EXPECT_EQ(arch::placement_unit(tiny, "single_blocks.0.linear1.scale_weight"), "single_blocks.0");
  EXPECT_EQ(arch::placement_unit(tiny, "final_layer.adaLN_modulation.1.weight"), "epilogue");
  EXPECT_THROW(arch::placement_unit(tiny, "single_blocks.2.linear1.weight"), Error);

  const auto i2v = arch::preset("wan2.1-i2v-14b", "t");
  EXPECT_EQ(arch::placement_unit(i2v, "img_emb.proj.1.weight"), "prologue");  // listed last, runs first
  EXPECT_EQ(arch::placement_unit(i2v, "head.modulation"), "epilogue");
  EXPECT_EQ(arch::placement_unit(i2v, "blocks.17.modulation"), "blocks.17");
  EXPECT_EQ(arch::placement_units(i2v).size(), 42u);

  const auto qwen = arch::preset("qwen-image", "t");
  EXPECT_EQ(arch::placement_unit(qwen, "transformer_blocks.2.attn.to_q.weight"), "transformer_blocks.2");
  EXPECT_EQ(arch::placement_unit(qwen, "norm_out.linear.weight"), "epilogue");
  EXPECT_EQ(arch::placement_unit(qwen, "proj_out.bias"), "epilogue");
  const auto sd3 = arch::preset("sd3.5-large", "t");
  EXPECT_EQ(arch::placement_unit(sd3, "joint_blocks.5.x_block.mlp.fc1.weight"), "joint_blocks.5");
  EXPECT_EQ(arch::placement_unit(sd3, "pos_embed"), "prologue");

  // Every tensor of every preset lands in one of the model's units.
  for (const auto& name : arch::preset_names()) {
    const auto c = arch::preset(name, "t");
    const auto units = arch::placement_units(c);
    EXPECT_EQ(static_cast<int64_t>(units.size()), c.num_blocks() + 2) << name;
    std::map<std::string, int> used;
    for (const auto& t : arch::tensor_layout(c)) {
      const auto u = arch::placement_unit(c, t.name);
      EXPECT_THAT(units, ::testing::Contains(u)) << t.name;
      ++used[u];
    }
    EXPECT_EQ(used.size(), units.size()) << name << ": a unit without tensors";
  }
}

TEST(LayoutGguf, PolicyLists) {
  EXPECT_THAT(arch::gguf_unquantized_prefixes(arch::Family::Flux),
              ::testing::ElementsAre("txt_in.", "img_in.", "time_in.", "vector_in.", "guidance_in.", "final_layer."));
  EXPECT_THAT(arch::gguf_unquantized_prefixes(arch::Family::Wan), ::testing::Contains("patch_embedding."));
  EXPECT_THAT(arch::gguf_unquantized_prefixes(arch::Family::SD3), ::testing::Contains("pos_embed"));
  EXPECT_THAT(arch::gguf_unquantized_prefixes(arch::Family::QwenImage), ::testing::Contains("time_text_embed."));
  EXPECT_THAT(arch::gguf_f32_name_fragments(arch::Family::Wan), ::testing::ElementsAre(".modulation"));
  EXPECT_TRUE(arch::gguf_f32_name_fragments(arch::Family::Flux).empty());
}

// lcpp.patch tests `name.find(fragment)`; for every released layout that is the same as a
// prefix test, so callers may use either.
TEST(LayoutGguf, ExclusionsActAsPrefixesOnReleasedLayouts) {
  for (const auto& name : arch::preset_names()) {
    const auto c = arch::preset(name, "t");
    const auto keep = arch::gguf_unquantized_prefixes(c.family);
    for (const auto& t : arch::tensor_layout(c)) {
      const bool contains = std::any_of(keep.begin(), keep.end(), [&](auto p) { return t.name.find(p) != std::string::npos; });
      const bool prefix = std::any_of(keep.begin(), keep.end(), [&](auto p) { return t.name.starts_with(p); });
      EXPECT_EQ(contains, prefix) << name << " " << t.name;
    }
  }
}

TEST(LayoutNames, NoDuplicates) {
  for (const auto& name : arch::preset_names()) {
    std::map<std::string, int> seen;
    for (const auto& t : arch::tensor_layout(arch::preset(name, "t"))) EXPECT_EQ(++seen[t.name], 1) << name << " " << t.name;
  }
}

}  // namespace
}  // namespace ditrun
