// Checkpoint: format detection by content, ComfyUI prefix stripping with other components
// set aside, and ComfyUI-GGUF's comfy.gguf.orig_shape.<name> shape override.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "models/formats/checkpoint.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun::formats {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// F32 payload whose values tell tensors apart: element i of tensor k is k * 1000 + i.
std::vector<uint8_t> f32_payload(int64_t elems, int k) {
  std::vector<float> v(static_cast<size_t>(elems));
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(k * 1000 + int(i));
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  return {p, p + v.size() * sizeof(float)};
}

struct Named {
  std::string name;
  Shape shape;
};

void write_safetensors(const std::string& path, const std::vector<Named>& tensors,
                       std::map<std::string, std::string> metadata = {}) {
  std::vector<SafetensorsEntry> entries;
  for (const auto& t : tensors) entries.push_back({t.name, DType::F32, t.shape});
  SafetensorsWriter w(path, entries, std::move(metadata));
  for (size_t k = 0; k < tensors.size(); ++k) w.write_next(f32_payload(element_count(tensors[k].shape), int(k)));
  w.finish();
}

void write_gguf(const std::string& path, const std::vector<Named>& tensors,
                std::vector<std::pair<std::string, GgufValue>> metadata = {}) {
  std::vector<GgufEntry> entries;
  for (const auto& t : tensors) entries.push_back({t.name, DType::F32, t.shape});
  metadata.insert(metadata.begin(), {"general.architecture", GgufValue::string("flux")});
  GgufWriter w(path, std::move(metadata), entries);
  for (size_t k = 0; k < tensors.size(); ++k) w.write_next(f32_payload(element_count(tensors[k].shape), int(k)));
  w.finish();
}

float first_value(const Checkpoint& ck, const TensorRecord& t) {
  float v;
  std::memcpy(&v, ck.data(t).data(), sizeof v);
  return v;
}

std::string open_error(const std::string& path) {
  try {
    Checkpoint ck(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << path << " opened without an error";
  return "";
}

const std::vector<Named> kPlain = {{"img_in.weight", {4, 2}}, {"img_in.bias", {4}}};

TEST(Checkpoint, OpensSafetensorsByContentWhateverTheExtension) {
  const std::string dir = test::temp_dir("ck-ext");
  for (const std::string name : {"w.safetensors", "w.gguf", "w.bin", "w"}) {
    const std::string path = dir + "/" + name;
    write_safetensors(path, kPlain, {{"format", "pt"}});
    Checkpoint ck(path);
    EXPECT_EQ(ck.format(), FileFormat::Safetensors) << name;
    ASSERT_EQ(ck.tensors().size(), 2u);
    EXPECT_EQ(ck.at("img_in.bias").shape, Shape{4});
    EXPECT_EQ(first_value(ck, ck.at("img_in.bias")), 1000.0f);
    EXPECT_EQ(ck.safetensors_metadata().at("format"), "pt");
    EXPECT_EQ(ck.gguf(), nullptr);
    EXPECT_EQ(ck.stripped_prefix(), "");
    EXPECT_EQ(ck.other_component_tensors(), 0u);
  }
}

TEST(Checkpoint, OpensGgufByContentWhateverTheExtension) {
  const std::string dir = test::temp_dir("ck-ext");
  for (const std::string name : {"w.gguf", "w.safetensors", "w.bin", "w"}) {
    const std::string path = dir + "/" + name;
    write_gguf(path, kPlain);
    Checkpoint ck(path);
    EXPECT_EQ(ck.format(), FileFormat::Gguf) << name;
    ASSERT_EQ(ck.tensors().size(), 2u);
    EXPECT_EQ(ck.at("img_in.weight").shape, (Shape{4, 2}));
    EXPECT_EQ(first_value(ck, ck.at("img_in.bias")), 1000.0f);
    ASSERT_NE(ck.gguf(), nullptr);
    EXPECT_EQ(ck.gguf_architecture(), "flux");
  }
}

// An all-in-one ComfyUI file: six diffusion-model tensors under the prefix, plus VAE and
// text-encoder tensors that the model does not use.
std::vector<Named> all_in_one() {
  std::vector<Named> t;
  for (int i = 0; i < 6; ++i) t.push_back({"model.diffusion_model.blocks." + std::to_string(i) + ".weight", {2, 3}});
  t.push_back({"vae.encoder.conv_in.weight", {3}});
  t.push_back({"vae.decoder.conv_out.bias", {1}});
  t.push_back({"text_encoders.t5xxl.shared.weight", {2}});
  return t;
}

void expect_stripped(const Checkpoint& ck) {
  EXPECT_EQ(ck.stripped_prefix(), "model.diffusion_model.");
  EXPECT_EQ(ck.other_component_tensors(), 3u);
  ASSERT_EQ(ck.tensors().size(), 6u);
  for (int i = 0; i < 6; ++i) {
    const std::string name = "blocks." + std::to_string(i) + ".weight";
    EXPECT_EQ(ck.tensors()[size_t(i)].name, name);
    EXPECT_EQ(ck.at(name).shape, (Shape{2, 3}));
    EXPECT_EQ(first_value(ck, ck.at(name)), float(i * 1000));  // the right bytes after renaming
  }
  for (const auto& t : ck.tensors()) EXPECT_EQ(t.name.find("vae."), std::string::npos);
  EXPECT_EQ(ck.find("vae.encoder.conv_in.weight"), nullptr);
  EXPECT_EQ(ck.find("model.diffusion_model.blocks.0.weight"), nullptr);
  try {
    ck.at("vae.encoder.conv_in.weight");
    ADD_FAILURE() << "at() found a VAE tensor";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(ck.path()), HasSubstr("vae.encoder.conv_in.weight")));
  }
}

TEST(Checkpoint, StripsModelPrefixAndCountsOtherComponentsSafetensors) {
  const std::string path = test::temp_dir("ck-prefix") + "/all_in_one.safetensors";
  write_safetensors(path, all_in_one());
  expect_stripped(Checkpoint(path));
}

TEST(Checkpoint, StripsModelPrefixAndCountsOtherComponentsGguf) {
  const std::string path = test::temp_dir("ck-prefix") + "/all_in_one.gguf";
  write_gguf(path, all_in_one());
  expect_stripped(Checkpoint(path));
}

TEST(Checkpoint, StripsPrefixFromTinyFileWhereEveryNameHasIt) {
  const std::string path = test::temp_dir("ck-prefix") + "/tiny.safetensors";
  write_safetensors(path, {{"model.diffusion_model.a.weight", {1}}, {"model.diffusion_model.a.bias", {1}}});
  Checkpoint ck(path);
  EXPECT_EQ(ck.stripped_prefix(), "model.diffusion_model.");
  EXPECT_NE(ck.find("a.weight"), nullptr);
  EXPECT_EQ(ck.other_component_tensors(), 0u);
}

TEST(Checkpoint, FewPrefixedNamesAmongOthersAreNotStripped) {
  const std::string path = test::temp_dir("ck-prefix") + "/mixed.safetensors";
  write_safetensors(path, {{"model.diffusion_model.a", {1}}, {"b", {1}}});
  Checkpoint ck(path);
  EXPECT_EQ(ck.stripped_prefix(), "");
  EXPECT_EQ(ck.tensors().size(), 2u);
}

TEST(Checkpoint, OrigShapeMetadataOverridesTheGgufShape) {
  const std::string path = test::temp_dir("ck-orig") + "/reshaped.gguf";
  write_gguf(path, {{"patch.weight", {12, 8}}, {"other", {6}}},
             {{"comfy.gguf.orig_shape.patch.weight", GgufValue::i32_array({2, 3, 4, 4})}});
  Checkpoint ck(path);
  EXPECT_EQ(ck.at("patch.weight").shape, (Shape{2, 3, 4, 4}));
  EXPECT_EQ(ck.at("patch.weight").nbytes, 96u * 4);
  EXPECT_EQ(ck.at("other").shape, Shape{6});
  // The container index keeps what the file says.
  EXPECT_EQ(ck.gguf()->tensors[0].shape, (Shape{12, 8}));
}

TEST(Checkpoint, OrigShapeAppliesBeforePrefixStripping) {
  const std::string path = test::temp_dir("ck-orig") + "/prefixed.gguf";
  std::vector<Named> t = all_in_one();
  t[0].shape = {6};
  write_gguf(path, t, {{"comfy.gguf.orig_shape.model.diffusion_model.blocks.0.weight", GgufValue::i32_array({1, 2, 3})}});
  Checkpoint ck(path);
  EXPECT_EQ(ck.at("blocks.0.weight").shape, (Shape{1, 2, 3}));
}

TEST(Checkpoint, OrigShapeErrors) {
  const std::string dir = test::temp_dir("ck-orig");
  struct Case {
    std::string file;
    GgufValue value;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"count.gguf", GgufValue::i32_array({2, 3, 4, 5}), "patch.weight"},  // 120 != 96 elements
      {"fewer.gguf", GgufValue::i32_array({2, 3}), "patch.weight"},
      {"negative.gguf", GgufValue::i32_array({-2, -48}), "comfy.gguf.orig_shape.patch.weight"},
      {"scalar.gguf", GgufValue::u32(96), "comfy.gguf.orig_shape.patch.weight"},
      {"strings.gguf",
       {GgufType::ARRAY, GgufType::STRING, std::vector<GgufValue>{GgufValue::string("96")}},
       "comfy.gguf.orig_shape.patch.weight"},
  };
  for (const auto& c : cases) {
    const std::string path = dir + "/" + c.file;
    write_gguf(path, {{"patch.weight", {12, 8}}}, {{"comfy.gguf.orig_shape.patch.weight", c.value}});
    EXPECT_THAT(open_error(path), AllOf(HasSubstr(path), HasSubstr(c.field))) << c.file;
  }
}

TEST(Checkpoint, BadFilesFailNamingThePath) {
  const std::string dir = test::temp_dir("ck-bad");
  const std::string empty = dir + "/empty.safetensors";
  std::ofstream(empty).close();
  EXPECT_THAT(open_error(empty), HasSubstr(empty));
  const std::string garbage = dir + "/garbage.gguf";
  std::ofstream(garbage) << "GGUF but not really";
  EXPECT_THAT(open_error(garbage), HasSubstr(garbage));
  EXPECT_THAT(open_error(dir + "/missing.safetensors"), HasSubstr("missing.safetensors"));
  EXPECT_THAT(open_error(dir), AllOf(HasSubstr(dir), HasSubstr("not a regular file")));
}

TEST(Checkpoint, ReferenceFilesOpen) {
  const Checkpoint wan(test::testdata("reference/wan21-tiny-t2v-Q5_0.gguf"));
  EXPECT_EQ(wan.format(), FileFormat::Gguf);
  EXPECT_EQ(wan.gguf_architecture(), "wan");
  EXPECT_EQ(wan.at("patch_embedding.weight").shape, (Shape{96, 16, 1, 2, 2}));
  const Checkpoint flux(test::testdata("reference/flux-tiny-dev.safetensors"));
  EXPECT_EQ(flux.format(), FileFormat::Safetensors);
  EXPECT_EQ(flux.stripped_prefix(), "");
  EXPECT_EQ(flux.at("img_in.weight").dtype, DType::BF16);
}

}  // namespace
}  // namespace ditrun::formats
