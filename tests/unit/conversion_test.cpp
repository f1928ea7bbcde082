// synth and quantize: the conversion rules, determinism, and that every written encoding
// reads back (through Checkpoint + WeightSet) as the values it was made from.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>

#include "models/arch/detect.h"
#include "models/arch/layout.h"
#include "models/formats/checkpoint.h"
#include "models/quant/conversion.h"
#include "models/quant/weight_set.h"
#include "models/synth/synthetic_model.h"
#include "models/synth/synthetic_values.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun {
namespace {

std::string synth_file(const std::string& preset, const std::string& weights, uint64_t seed, const std::string& ext) {
  synth::SynthRequest r;
  r.config = arch::preset(preset, "test");
  r.target = quant::ConversionTarget::parse(weights);
  r.seed = seed;
  r.out_path = test::temp_dir("synth") + "/" + preset + "-" + weights + ext;
  synth::write_synthetic_model(r);
  return r.out_path;
}

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

TEST(ConversionTarget, ParsesEveryDocumentedSpelling) {
  EXPECT_EQ(quant::ConversionTarget::parse("bf16").kind, quant::TargetKind::Float);
  EXPECT_EQ(quant::ConversionTarget::parse("fp8").dtype, DType::F8_E4M3);
  EXPECT_EQ(quant::ConversionTarget::parse("fp8-e5m2").dtype, DType::F8_E5M2);
  EXPECT_EQ(quant::ConversionTarget::parse("fp8-scaled").kind, quant::TargetKind::Fp8Scaled);
  EXPECT_EQ(quant::ConversionTarget::parse("fp8-block").block, 64);
  EXPECT_EQ(quant::ConversionTarget::parse("fp8-block128").block, 128);
  EXPECT_EQ(quant::ConversionTarget::parse("Q4_K").dtype, DType::Q4_K);
  EXPECT_THROW(quant::ConversionTarget::parse("q9_9"), Error);
  EXPECT_THROW(quant::ConversionTarget::parse("iq2_xxs"), Error);  // no encoder
  EXPECT_THROW(quant::ConversionTarget::parse("fp8-blockx"), Error);
}

TEST(ConversionRules, GgufKeepsWhatCity96Keeps) {
  const auto t = quant::ConversionTarget::parse("q4_K");
  using arch::Family;
  // Quantized: a 2-D block weight whose rows are a multiple of 256.
  EXPECT_EQ(quant::plan_conversion(t, Family::Flux, "double_blocks.0.img_mlp.0.weight", {12288, 3072}, DType::BF16, true).storage, DType::Q4_K);
  // K-quant fallback: rows not divisible by 256 become F16.
  EXPECT_EQ(quant::plan_conversion(t, Family::Flux, "double_blocks.0.img_mlp.0.weight", {512, 128}, DType::BF16, true).storage, DType::F16);
  // Excluded prefixes keep the source float type; 1-D and small tensors are F32.
  EXPECT_EQ(quant::plan_conversion(t, Family::Flux, "img_in.weight", {3072, 64}, DType::BF16, false).storage, DType::BF16);
  EXPECT_EQ(quant::plan_conversion(t, Family::Flux, "img_in.bias", {3072}, DType::BF16, false).storage, DType::F32);
  EXPECT_EQ(quant::plan_conversion(t, Family::Flux, "double_blocks.0.img_attn.norm.key_norm.scale", {128}, DType::BF16, true).storage, DType::F32);
  // Wan: modulation and the 5-D patch embedding are F32.
  EXPECT_EQ(quant::plan_conversion(t, Family::Wan, "blocks.0.modulation", {1, 6, 5120}, DType::BF16, true).storage, DType::F32);
  EXPECT_EQ(quant::plan_conversion(t, Family::Wan, "patch_embedding.weight", {5120, 16, 1, 2, 2}, DType::BF16, false).storage, DType::F32);
  // An f32 source's kept tensors become F16, as convert.py does.
  EXPECT_EQ(quant::plan_conversion(t, Family::Flux, "txt_in.weight", {3072, 4096}, DType::F32, false).storage, DType::F16);
}

TEST(ConversionRules, Fp8OnlyTouchesBlockLinearWeights) {
  const auto t = quant::ConversionTarget::parse("fp8-scaled");
  auto plan = [&](const std::string& name, formats::Shape shape, bool in_block) {
    return quant::plan_conversion(t, arch::Family::Flux, name, shape, DType::BF16, in_block);
  };
  EXPECT_EQ(plan("double_blocks.0.img_attn.qkv.weight", {384, 128}, true).storage, DType::F8_E4M3);
  EXPECT_EQ(plan("double_blocks.0.img_attn.qkv.weight", {384, 128}, true).scale, quant::TensorConversion::Scale::PerTensor);
  EXPECT_EQ(plan("double_blocks.0.img_attn.qkv.bias", {384}, true).storage, DType::BF16);
  EXPECT_EQ(plan("double_blocks.0.img_attn.norm.query_norm.scale", {64}, true).storage, DType::BF16);
  EXPECT_EQ(plan("img_in.weight", {128, 64}, false).storage, DType::BF16);
}

TEST(Synth, SameSeedSameBytesDifferentSeedDifferentValues) {
  const auto a = synth_file("flux-tiny", "bf16", 7, ".safetensors");
  const auto b = synth_file("flux-tiny", "bf16", 7, ".safetensors");
  const auto c = synth_file("flux-tiny", "bf16", 8, ".safetensors");
  EXPECT_EQ(file_bytes(a), file_bytes(b));
  EXPECT_NE(file_bytes(a), file_bytes(c));
}

TEST(Synth, ValuesDoNotDependOnChunking) {
  arch::TensorSpec spec{"blocks.0.ffn.0.weight", {160, 96}, arch::TensorRole::LinearWeight};
  std::vector<float> whole(1000), parts(1000);
  synth::synthetic_values(3, spec, 0, whole);
  synth::synthetic_values(3, spec, 0, std::span<float>(parts).subspan(0, 333));
  synth::synthetic_values(3, spec, 333, std::span<float>(parts).subspan(333));
  EXPECT_EQ(whole, parts);
  double sum = 0, sq = 0;
  for (float v : whole) sum += v, sq += double(v) * v;
  const double stddev = std::sqrt(sq / 1000 - (sum / 1000) * (sum / 1000));
  EXPECT_NEAR(stddev, 1.0 / std::sqrt(96.0), 0.2 / std::sqrt(96.0));  // ~N(0, 1/fan_in)
}

TEST(Synth, LayoutMatchesTheArchitectureAndConfigSurvives) {
  const auto path = synth_file("wan-tiny", "bf16", 1, ".safetensors");
  const formats::Checkpoint ck(path);
  const arch::ModelConfig config = arch::preset("wan-tiny", "test");
  const auto layout = arch::tensor_layout(config);
  ASSERT_EQ(ck.tensors().size(), layout.size());
  for (size_t i = 0; i < layout.size(); ++i) {
    EXPECT_EQ(ck.tensors()[i].name, layout[i].name);
    EXPECT_EQ(ck.tensors()[i].shape, layout[i].shape);
  }
  const auto recorded = nlohmann::json::parse(ck.safetensors_metadata().at(synth::kConfigMetadataKey));
  EXPECT_EQ(arch::ModelConfig::from_json(recorded, path).params, config.params);
}

// Every encoding of one seed converts the same bf16 model: decoding it must land within
// that encoding's error of the bf16 values.
struct EncodingCase {
  std::string weights;
  std::string ext;
  double max_error;  // worst absolute error on any element, weights are ~N(0, 1/fan_in)
};

class EveryEncoding : public ::testing::TestWithParam<EncodingCase> {};

TEST_P(EveryEncoding, DecodesBackToTheBf16Model) {
  const EncodingCase& c = GetParam();
  const auto ref_path = synth_file("flux-tiny", "bf16", 5, ".safetensors");
  const auto enc_path = synth_file("flux-tiny", c.weights, 5, c.ext);
  const formats::Checkpoint ref_ck(ref_path), enc_ck(enc_path);
  const quant::WeightSet ref(ref_ck), enc(enc_ck);
  ASSERT_EQ(ref.weights().size(), enc.weights().size()) << "auxiliary tensors must fold into their weights";
  size_t changed = 0;
  for (const auto& w : ref.weights()) {
    const quant::Weight& e = enc.at(w.name);
    ASSERT_EQ(e.shape, w.shape) << w.name;
    if (e.storage != w.storage) ++changed;
    EXPECT_LE(max_abs_diff(w.dequantize(), e.dequantize()), c.max_error) << w.name << " as " << dtype_name(e.storage);
  }
  if (c.weights != "f32") {
    EXPECT_GT(changed, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Synth, EveryEncoding,
                         ::testing::Values(EncodingCase{"f32", ".safetensors", 0.0},
                                           EncodingCase{"f16", ".gguf", 1e-3},
                                           EncodingCase{"fp8", ".safetensors", 0.05},
                                           EncodingCase{"fp8-scaled", ".safetensors", 0.03},
                                           EncodingCase{"fp8-block", ".safetensors", 0.03},
                                           EncodingCase{"q8_0", ".gguf", 0.01},
                                           EncodingCase{"q6_K", ".gguf", 0.03},
                                           EncodingCase{"q5_K", ".gguf", 0.05},
                                           EncodingCase{"q4_K", ".gguf", 0.1},
                                           EncodingCase{"q4_0", ".gguf", 0.1}),
                         [](const auto& info) {
                           std::string n = info.param.weights;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

TEST(Synth, ContainerMustFitTheEncoding) {
  synth::SynthRequest r;
  r.config = arch::preset("flux-tiny", "test");
  r.target = quant::ConversionTarget::parse("fp8");
  r.out_path = test::temp_dir("bad") + "/x.gguf";
  EXPECT_THROW(synth::write_synthetic_model(r), Error);
  r.target = quant::ConversionTarget::parse("q8_0");
  r.out_path = test::temp_dir("bad") + "/x.safetensors";
  EXPECT_THROW(synth::write_synthetic_model(r), Error);
}

}  // namespace
}  // namespace ditrun
