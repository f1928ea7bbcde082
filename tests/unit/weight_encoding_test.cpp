// Small safetensors files in each weight encoding ditrun reads (docs/formats.md section 4),
// written with SafetensorsWriter, then resolved by quant::WeightSet: the encoding, the scale
// layout, the dequantized values, and what counts as a weight at all.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "models/formats/checkpoint.h"
#include "models/formats/safetensors.h"
#include "models/quant/fp8_quantize.h"
#include "models/quant/weight_set.h"
#include "runtime/core/error.h"
#include "runtime/core/float_codecs.h"
#include "test_paths.h"

namespace ditrun::quant {
namespace {

using formats::Shape;

struct Tensor {
  std::string name;
  DType dtype;
  Shape shape;
  std::vector<uint8_t> bytes;
};

std::vector<uint8_t> f32_bytes(std::vector<float> v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

std::vector<uint8_t> bf16_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out;
  for (float f : v) {
    const uint16_t b = f32_to_bf16(f);
    out.push_back(uint8_t(b));
    out.push_back(uint8_t(b >> 8));
  }
  return out;
}

std::vector<uint8_t> text_bytes(const std::string& s) { return {s.begin(), s.end()}; }

// Random fp8 codes, avoiding NaN codes so every element has a value to compare.
std::vector<uint8_t> fp8_codes(size_t n, DType t, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& c : out) {
    do c = uint8_t(rng());
    while (t == DType::F8_E4M3 ? (c & 0x7F) == 0x7F : ((c >> 2) & 0x1F) == 0x1F);
  }
  return out;
}

float fp8_value(DType t, uint8_t c) { return t == DType::F8_E4M3 ? f8e4m3_to_f32(c) : f8e5m2_to_f32(c); }

// Writes the tensors to a fresh file and opens it; the checkpoint outlives the weight set.
class WeightEncoding : public ::testing::Test {
 protected:
  const WeightSet& open(const std::vector<Tensor>& tensors, std::map<std::string, std::string> metadata = {}) {
    const std::string path = test::temp_dir("weights") + "/model.safetensors";
    std::vector<formats::SafetensorsEntry> entries;
    for (const auto& t : tensors) entries.push_back({t.name, t.dtype, t.shape});
    formats::SafetensorsWriter writer(path, entries, std::move(metadata));
    for (const auto& t : tensors) writer.write_next(t.bytes);
    writer.finish();
    checkpoint_ = std::make_unique<formats::Checkpoint>(path);
    set_ = std::make_unique<WeightSet>(*checkpoint_);
    return *set_;
  }

  std::unique_ptr<formats::Checkpoint> checkpoint_;
  std::unique_ptr<WeightSet> set_;
};

// A ComfyUI scaled_fp8 layer: fp8 weight, f32 scalar scale_weight, optional scale_input.
std::vector<Tensor> scaled_layer(const std::string& layer, const std::vector<uint8_t>& codes, Shape shape, float scale,
                                 std::optional<float> input_scale, Shape scale_shape = {}) {
  std::vector<Tensor> out = {{layer + ".weight", DType::F8_E4M3, shape, codes},
                             {layer + ".scale_weight", DType::F32, scale_shape, f32_bytes({scale})}};
  if (input_scale) out.push_back({layer + ".scale_input", DType::F32, {1}, f32_bytes({*input_scale})});
  return out;
}

void append(std::vector<Tensor>& to, std::vector<Tensor> more) {
  for (auto& t : more) to.push_back(std::move(t));
}

void expect_per_tensor_values(const Weight& w, DType t, const std::vector<uint8_t>& codes, float scale) {
  const auto y = w.dequantize();
  ASSERT_EQ(y.size(), codes.size());
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], fp8_value(t, codes[i]) * scale) << w.name << " element " << i;
}

// ---- (a) ComfyUI scaled_fp8 with the marker -----------------------------------------------

std::vector<Tensor> scaled_fp8_file(Shape marker_shape, const std::vector<uint8_t>& codes) {
  std::vector<Tensor> t = {{"scaled_fp8", DType::F8_E4M3, marker_shape,
                            std::vector<uint8_t>(size_t(formats::element_count(marker_shape)), 0)}};
  append(t, scaled_layer("blocks.0.attn.qkv", codes, {4, 8}, 0.125f, 0.5f));
  append(t, scaled_layer("blocks.0.mlp.fc1", codes, {8, 4}, 3.0f, std::nullopt, {1}));
  t.push_back({"blocks.0.attn.qkv.bias", DType::BF16, {4}, bf16_bytes({1, 2, 3, 4})});
  t.push_back({"blocks.0.norm.weight", DType::BF16, {8}, bf16_bytes({1, 1, 1, 1, 2, 2, 2, 2})});
  return t;
}

TEST_F(WeightEncoding, ScaledFp8MarkerEmptyAllowsFp8Matmul) {
  const auto codes = fp8_codes(32, DType::F8_E4M3, 1);
  const auto& set = open(scaled_fp8_file({0}, codes));
  EXPECT_TRUE(set.has_scaled_fp8_marker());
  EXPECT_TRUE(set.fp8_matmul_allowed());
  ASSERT_EQ(set.weights().size(), 4u);  // marker and scales are not weights

  const Weight& qkv = set.at("blocks.0.attn.qkv.weight");
  EXPECT_EQ(qkv.encoding, Encoding::ScaledFp8);
  EXPECT_EQ(qkv.scale_layout, ScaleLayout::PerTensor);
  EXPECT_EQ(qkv.storage, DType::F8_E4M3);
  EXPECT_EQ(qkv.shape, (Shape{4, 8}));
  ASSERT_TRUE(qkv.input_scale.has_value());
  EXPECT_EQ(*qkv.input_scale, 0.5f);
  EXPECT_EQ(qkv.stored_bytes(), 32u + 4u + 4u);  // codes + scale_weight + scale_input
  expect_per_tensor_values(qkv, DType::F8_E4M3, codes, 0.125f);

  const Weight& fc1 = set.at("blocks.0.mlp.fc1.weight");  // scale stored as [1]
  EXPECT_EQ(fc1.encoding, Encoding::ScaledFp8);
  EXPECT_FALSE(fc1.input_scale.has_value());
  EXPECT_EQ(fc1.stored_bytes(), 32u + 4u);
  expect_per_tensor_values(fc1, DType::F8_E4M3, codes, 3.0f);

  const Weight& norm = set.at("blocks.0.norm.weight");  // high-precision layers stay plain
  EXPECT_EQ(norm.encoding, Encoding::Plain);
  EXPECT_EQ(norm.scale_layout, ScaleLayout::None);
  EXPECT_EQ(norm.dequantize(), (std::vector<float>{1, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(set.at("blocks.0.attn.qkv.bias").dequantize(), (std::vector<float>{1, 2, 3, 4}));
}

TEST_F(WeightEncoding, ScaledFp8MarkerOfTwoElementsForbidsFp8Matmul) {
  const auto codes = fp8_codes(32, DType::F8_E4M3, 2);
  const auto& set = open(scaled_fp8_file({2}, codes));
  EXPECT_TRUE(set.has_scaled_fp8_marker());
  EXPECT_FALSE(set.fp8_matmul_allowed());
  EXPECT_EQ(set.at("blocks.0.attn.qkv.weight").encoding, Encoding::ScaledFp8);
  expect_per_tensor_values(set.at("blocks.0.attn.qkv.weight"), DType::F8_E4M3, codes, 0.125f);
}

// ---- (b) Kijai "fp8_scaled": the same layers, no marker -------------------------------------

TEST_F(WeightEncoding, KijaiFp8ScaledWithoutMarker) {
  const auto codes = fp8_codes(32, DType::F8_E4M3, 3);
  auto tensors = scaled_fp8_file({0}, codes);
  tensors.erase(tensors.begin());  // drop the marker
  const auto& set = open(tensors);
  EXPECT_FALSE(set.has_scaled_fp8_marker());
  EXPECT_TRUE(set.fp8_matmul_allowed());
  const Weight& qkv = set.at("blocks.0.attn.qkv.weight");
  EXPECT_EQ(qkv.encoding, Encoding::ScaledFp8);  // an f32 scalar scale is ComfyUI/Kijai style
  EXPECT_EQ(qkv.scale_layout, ScaleLayout::PerTensor);
  expect_per_tensor_values(qkv, DType::F8_E4M3, codes, 0.125f);
  EXPECT_EQ(*qkv.input_scale, 0.5f);
}

// ---- (c) plain fp8, no scales -------------------------------------------------------------

TEST_F(WeightEncoding, PlainFp8BothFormatsDecodeEveryCode) {
  std::vector<uint8_t> all(256);
  for (int c = 0; c < 256; ++c) all[size_t(c)] = uint8_t(c);
  const auto& set = open({{"a.weight", DType::F8_E4M3, {16, 16}, all}, {"b.weight", DType::F8_E5M2, {16, 16}, all}});
  for (auto [name, t] : {std::pair{"a.weight", DType::F8_E4M3}, std::pair{"b.weight", DType::F8_E5M2}}) {
    const Weight& w = set.at(name);
    EXPECT_EQ(w.encoding, Encoding::Plain);
    EXPECT_EQ(w.scale_layout, ScaleLayout::None);
    EXPECT_EQ(w.storage, t);
    EXPECT_EQ(w.stored_bytes(), 256u);
    const auto y = w.dequantize();
    for (int c = 0; c < 256; ++c) {
      const float want = fp8_value(t, uint8_t(c));
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(y[size_t(c)])) << name << " code " << c;
      } else {
        EXPECT_EQ(y[size_t(c)], want) << name << " code " << c;
      }
    }
  }
}

// ---- (d) comfy_quant ----------------------------------------------------------------------

std::vector<Tensor> comfy_quant_layer(const std::string& layer, DType t, const std::vector<uint8_t>& codes, float scale,
                                      bool marker_tensor) {
  const std::string format = t == DType::F8_E4M3 ? "float8_e4m3fn" : "float8_e5m2";
  std::vector<Tensor> out = {{layer + ".weight", t, {4, 8}, codes},
                             {layer + ".weight_scale", DType::F32, {}, f32_bytes({scale})}};
  if (marker_tensor) {
    const auto json = text_bytes(R"({"format": ")" + format + R"("})");
    out.push_back({layer + ".comfy_quant", DType::U8, {int64_t(json.size())}, json});
  }
  return out;
}

TEST_F(WeightEncoding, ComfyQuantFromMarkerTensors) {
  const auto c4 = fp8_codes(32, DType::F8_E4M3, 4), c5 = fp8_codes(32, DType::F8_E5M2, 5);
  std::vector<Tensor> t = comfy_quant_layer("blocks.0.q", DType::F8_E4M3, c4, 0.25f, true);
  append(t, comfy_quant_layer("blocks.0.k", DType::F8_E5M2, c5, 2.0f, true));
  t.push_back({"blocks.0.q.input_scale", DType::F32, {}, f32_bytes({0.75f})});
  t.push_back({"blocks.0.norm.weight", DType::F32, {8}, f32_bytes({1, 2, 3, 4, 5, 6, 7, 8})});
  const auto& set = open(t);
  ASSERT_EQ(set.weights().size(), 3u);
  const Weight& q = set.at("blocks.0.q.weight");
  EXPECT_EQ(q.encoding, Encoding::ComfyQuant);
  EXPECT_EQ(q.scale_layout, ScaleLayout::PerTensor);
  EXPECT_EQ(*q.input_scale, 0.75f);
  EXPECT_EQ(q.stored_bytes(), 32u + 4u + 4u);
  expect_per_tensor_values(q, DType::F8_E4M3, c4, 0.25f);
  const Weight& k = set.at("blocks.0.k.weight");
  EXPECT_EQ(k.encoding, Encoding::ComfyQuant);
  EXPECT_FALSE(k.input_scale.has_value());
  expect_per_tensor_values(k, DType::F8_E5M2, c5, 2.0f);
  EXPECT_EQ(set.at("blocks.0.norm.weight").encoding, Encoding::Plain);
}

TEST_F(WeightEncoding, ComfyQuantFromHeaderMetadata) {
  const auto c4 = fp8_codes(32, DType::F8_E4M3, 6);
  std::vector<Tensor> t = comfy_quant_layer("blocks.1.proj", DType::F8_E4M3, c4, 0.5f, false);
  const auto& set = open(t, {{"_quantization_metadata", R"({"format_version": "1.0", "layers": {"blocks.1.proj": {"format": "float8_e4m3fn"}}})"}});
  const Weight& w = set.at("blocks.1.proj.weight");
  EXPECT_EQ(w.encoding, Encoding::ComfyQuant);
  expect_per_tensor_values(w, DType::F8_E4M3, c4, 0.5f);
}

TEST_F(WeightEncoding, ComfyQuantNvfp4IsReportedUnsupported) {
  // NVFP4: packed e2m1 pairs [N, K/2], e4m3 block scales (group 16), f32 global scale.
  const auto json = text_bytes(R"({"format": "nvfp4"})");
  const std::vector<Tensor> t = {
      {"blocks.0.fc.weight", DType::U8, {16, 16}, std::vector<uint8_t>(256, 0x11)},
      {"blocks.0.fc.weight_scale", DType::F8_E4M3, {16, 2}, std::vector<uint8_t>(32, 0x38)},
      {"blocks.0.fc.weight_scale_2", DType::F32, {}, f32_bytes({1.0f})},
      {"blocks.0.fc.comfy_quant", DType::U8, {int64_t(json.size())}, json},
  };
  const auto& set = open(t);
  ASSERT_EQ(set.weights().size(), 1u);
  const Weight& w = set.at("blocks.0.fc.weight");
  EXPECT_EQ(w.encoding, Encoding::ComfyQuant);
  EXPECT_FALSE(w.unsupported.empty());
  EXPECT_EQ(w.stored_bytes(), 256u + 32u + 4u);  // block scales and global scale count too
  try {
    (void)w.dequantize();
    FAIL() << "dequantizing nvfp4 should fail";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("blocks.0.fc.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("nvfp4"), std::string::npos) << msg;
  }
}

TEST_F(WeightEncoding, ComfyQuantRejectsMalformedConfig) {
  auto t = comfy_quant_layer("blocks.0.q", DType::F8_E4M3, fp8_codes(32, DType::F8_E4M3, 7), 1.0f, false);
  // A layer config that is not an object must fail with ditrun's error, not a JSON exception.
  EXPECT_THROW(open(t, {{"_quantization_metadata", R"({"layers": {"blocks.0.q": "float8_e4m3fn"}})"}}), Error);
  EXPECT_THROW(open(t, {{"_quantization_metadata", R"({"layers": {"blocks.0.q": {"fmt": 1}}})"}}), Error);
  EXPECT_THROW(open(t, {{"_quantization_metadata", "not json"}}), Error);
}

TEST_F(WeightEncoding, ComfyQuantFormatMustMatchStorage) {
  // A layer that says e4m3 but stores e5m2 bytes would decode to wrong values silently.
  auto t = comfy_quant_layer("blocks.0.q", DType::F8_E5M2, fp8_codes(32, DType::F8_E5M2, 8), 1.0f, false);
  EXPECT_THROW(open(t, {{"_quantization_metadata", R"({"layers": {"blocks.0.q": {"format": "float8_e4m3fn"}}})"}}),
               Error);
}

// ---- (e) musubi-tuner block-wise fp8 ------------------------------------------------------

std::vector<float> smooth_weights(int64_t rows, int64_t cols) {
  std::vector<float> w(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      w[size_t(r * cols + c)] = std::sin(float(r * cols + c) * 0.37f) * std::pow(4.0f, float(r % 3) - 1.0f) *
                                (c < cols / 2 ? 1.0f : 0.1f);  // blocks of different magnitude in a row
  return w;
}

void expect_close_to_source(const Weight& w, const std::vector<float>& src, const Fp8Quantized& q) {
  const auto y = w.dequantize();
  ASSERT_EQ(y.size(), src.size());
  for (size_t i = 0; i < y.size(); ++i) {
    // Exactly the codes times the stored scale of the element's group...
    const int64_t r = int64_t(i) / w.cols(), c = int64_t(i) % w.cols();
    const size_t g = q.layout == ScaleLayout::PerRow ? size_t(r) : size_t(r * (w.cols() / q.block) + c / q.block);
    ASSERT_EQ(y[i], f8e4m3_to_f32(q.bytes[i]) * q.scales[g]) << i;
    // ...and close to the source, as fp8 e4m3 is: 2^-4 of the group's largest magnitude.
    ASSERT_LE(std::fabs(y[i] - src[i]), 448.0f * q.scales[g] * 0x1p-4f) << i;
  }
}

TEST_F(WeightEncoding, MusubiBlockwiseBf16Scales) {
  const int64_t rows = 3, cols = 128;
  const auto src = smooth_weights(rows, cols);
  const auto q = quantize_fp8_blockwise(src, rows, cols, 64, DType::BF16);
  ASSERT_EQ(q.layout, ScaleLayout::PerBlock);
  const auto& set = open({{"blocks.0.attn.qkv.weight", DType::F8_E4M3, {rows, cols}, q.bytes},
                          {"blocks.0.attn.qkv.scale_weight", DType::BF16, {rows, cols / 64, 1}, bf16_bytes(q.scales)}});
  const Weight& w = set.at("blocks.0.attn.qkv.weight");
  EXPECT_EQ(w.encoding, Encoding::BlockFp8);
  EXPECT_EQ(w.scale_layout, ScaleLayout::PerBlock);
  EXPECT_EQ(w.scale_block, 64);
  EXPECT_EQ(w.scales, q.scales);
  EXPECT_EQ(w.stored_bytes(), uint64_t(rows * cols + rows * 2 * 2));
  expect_close_to_source(w, src, q);
}

TEST_F(WeightEncoding, MusubiPerChannelFallback) {
  const int64_t rows = 4, cols = 100;  // 100 % 64 != 0
  const auto src = smooth_weights(rows, cols);
  const auto q = quantize_fp8_blockwise(src, rows, cols, 64, DType::BF16);
  ASSERT_EQ(q.layout, ScaleLayout::PerRow);
  const auto& set = open({{"fc.weight", DType::F8_E4M3, {rows, cols}, q.bytes},
                          {"fc.scale_weight", DType::BF16, {rows, 1}, bf16_bytes(q.scales)}});
  const Weight& w = set.at("fc.weight");
  EXPECT_EQ(w.encoding, Encoding::BlockFp8);
  EXPECT_EQ(w.scale_layout, ScaleLayout::PerRow);
  EXPECT_EQ(w.stored_bytes(), uint64_t(rows * cols + rows * 2));
  expect_close_to_source(w, src, q);
}

TEST_F(WeightEncoding, MusubiPerTensorBf16ScalarIsBlockFp8) {
  const auto codes = fp8_codes(32, DType::F8_E4M3, 9);
  const auto& set = open({{"fc.weight", DType::F8_E4M3, {4, 8}, codes},
                          {"fc.scale_weight", DType::BF16, {}, bf16_bytes({0.5f})}});
  const Weight& w = set.at("fc.weight");
  EXPECT_EQ(w.encoding, Encoding::BlockFp8);  // no marker and not f32: musubi's tensor mode
  EXPECT_EQ(w.scale_layout, ScaleLayout::PerTensor);
  expect_per_tensor_values(w, DType::F8_E4M3, codes, 0.5f);
}

TEST_F(WeightEncoding, ScaleThatFitsNoLayoutIsAnError) {
  const auto codes = fp8_codes(32, DType::F8_E4M3, 10);
  EXPECT_THROW(open({{"fc.weight", DType::F8_E4M3, {4, 8}, codes},
                     {"fc.scale_weight", DType::BF16, {4, 3, 1}, bf16_bytes(std::vector<float>(12, 1.0f))}}),
               Error);
  EXPECT_THROW(open({{"fc.weight", DType::F8_E4M3, {4, 8}, codes},
                     {"fc.scale_weight", DType::F32, {3}, f32_bytes({1, 1, 1})}}),
               Error);
}

// ---- (f) the ComfyUI model prefix ---------------------------------------------------------

TEST_F(WeightEncoding, ModelPrefixOnEveryName) {
  const std::string p = "model.diffusion_model.";
  const auto codes = fp8_codes(32, DType::F8_E4M3, 11);
  auto tensors = scaled_fp8_file({2}, codes);
  append(tensors, comfy_quant_layer("blocks.2.q", DType::F8_E4M3, codes, 0.25f, true));
  append(tensors, comfy_quant_layer("blocks.3.q", DType::F8_E4M3, codes, 4.0f, false));
  for (auto& t : tensors) t.name = p + t.name;
  // The header metadata names layers by their full key, prefix included.
  const auto& set =
      open(tensors, {{"_quantization_metadata", R"({"layers": {")" + p + R"(blocks.3.q": {"format": "float8_e4m3fn"}}})"}});
  EXPECT_EQ(checkpoint_->stripped_prefix(), p);
  EXPECT_TRUE(set.has_scaled_fp8_marker());
  EXPECT_FALSE(set.fp8_matmul_allowed());
  for (const auto& w : set.weights()) EXPECT_NE(w.name.rfind(p, 0), 0u) << w.name;
  ASSERT_EQ(set.weights().size(), 6u);
  EXPECT_EQ(set.at("blocks.0.attn.qkv.weight").encoding, Encoding::ScaledFp8);
  expect_per_tensor_values(set.at("blocks.0.attn.qkv.weight"), DType::F8_E4M3, codes, 0.125f);
  EXPECT_EQ(set.at("blocks.2.q.weight").encoding, Encoding::ComfyQuant);
  expect_per_tensor_values(set.at("blocks.2.q.weight"), DType::F8_E4M3, codes, 0.25f);
  EXPECT_EQ(set.at("blocks.3.q.weight").encoding, Encoding::ComfyQuant);
  expect_per_tensor_values(set.at("blocks.3.q.weight"), DType::F8_E4M3, codes, 4.0f);
}

// ---- (g) auxiliary tensors ----------------------------------------------------------------

TEST_F(WeightEncoding, AuxiliaryTensorsAreNotWeights) {
  const auto codes = fp8_codes(32, DType::F8_E4M3, 12);
  auto tensors = scaled_fp8_file({0}, codes);
  append(tensors, comfy_quant_layer("blocks.2.q", DType::F8_E4M3, codes, 0.25f, true));
  tensors.push_back({"blocks.2.q.input_scale", DType::F32, {}, f32_bytes({1.0f})});
  const auto& set = open(tensors);
  uint64_t weight_bytes = 0, file_tensor_bytes = 0, marker_bytes = 0;
  for (const auto& w : set.weights()) {
    EXPECT_FALSE(is_auxiliary_tensor(w.name)) << w.name;
    EXPECT_EQ(w.name.find("scale"), std::string::npos) << w.name;
    EXPECT_EQ(w.name.find("comfy_quant"), std::string::npos) << w.name;
    weight_bytes += w.stored_bytes();
  }
  for (const auto& t : checkpoint_->tensors()) {
    file_tensor_bytes += t.nbytes;
    if (t.name == "scaled_fp8" || t.name.ends_with(".comfy_quant")) marker_bytes += t.nbytes;
  }
  // Every byte in the file belongs to a weight or is a marker: scale bytes are counted once.
  EXPECT_EQ(weight_bytes + marker_bytes, file_tensor_bytes);
  for (auto name : {"scaled_fp8", "x.scale_weight", "x.scale_input", "x.comfy_quant", "x.weight_scale",
                    "x.input_scale", "x.weight_scale_2", "x.pre_quant_scale"})
    EXPECT_TRUE(is_auxiliary_tensor(name)) << name;
  for (auto name : {"x.weight", "x.bias", "x.scale", "scale_shift_table", "x.modulation"})
    EXPECT_FALSE(is_auxiliary_tensor(name)) << name;
}

}  // namespace
}  // namespace ditrun::quant
