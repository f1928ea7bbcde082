// Every tensor of ggml-vectors.gguf was quantized by ggml itself; its `.expected` twin is
// what ggml's dequantize_row_* returns. Our decoders must reproduce it to within 1 ulp.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <map>

#include "models/formats/gguf.h"
#include "models/formats/mapped_file.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun {
namespace {

const std::string kVectors = test::testdata("gguf/ggml-vectors.gguf");

int64_t ulp_distance(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return (std::isnan(a) && std::isnan(b)) ? 0 : INT64_MAX;
  auto key = [](float f) {
    const int32_t i = std::bit_cast<int32_t>(f);
    return i < 0 ? int64_t(INT32_MIN) - i : int64_t(i);
  };
  return std::llabs(key(a) - key(b));
}

class GgmlVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(GgmlVectors, DequantizeMatchesGgmlWithinOneUlp) {
  formats::MappedFile file(kVectors);
  const formats::GgufIndex index = formats::parse_gguf(file.bytes(), kVectors);
  std::map<std::string, const formats::TensorRecord*> by_name;
  for (const auto& t : index.tensors) by_name[t.name] = &t;
  const std::string type = GetParam();
  const auto* quant = by_name.at(type + ".weight");
  const auto* expected = by_name.at(type + ".weight.expected");
  ASSERT_EQ(quant->shape, (formats::Shape{6, 512}));
  ASSERT_EQ(expected->dtype, DType::F32);
  const auto user_type = dtype_from_user_name(type);
  ASSERT_TRUE(user_type.has_value());
  ASSERT_EQ(quant->dtype, *user_type);

  std::vector<float> got(6 * 512), want(6 * 512);
  dequantize_to_f32(quant->dtype, file.bytes().subspan(quant->offset, quant->nbytes), got);
  dequantize_to_f32(DType::F32, file.bytes().subspan(expected->offset, expected->nbytes), want);
  int64_t worst = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const int64_t d = ulp_distance(got[i], want[i]);
    if (d > worst) {
      worst = d;
      worst_at = i;
    }
  }
  EXPECT_LE(worst, 1) << type << " element " << worst_at << ": got " << got[worst_at] << ", ggml " << want[worst_at];
}

INSTANTIATE_TEST_SUITE_P(AllDecodableTypes, GgmlVectors,
                         ::testing::Values("f32", "f16", "bf16", "q8_0", "q6_K", "q5_K", "q5_1", "q5_0", "q4_K",
                                           "q4_1", "q4_0", "q3_K", "q2_K", "iq4_nl", "iq4_xs", "tq1_0", "tq2_0",
                                           "mxfp4"));

TEST(GgmlVectors, CodebookTypesAreRefusedClearly) {
  formats::MappedFile file(kVectors);
  const formats::GgufIndex index = formats::parse_gguf(file.bytes(), kVectors);
  for (const auto& t : index.tensors) {
    if (t.name != "iq2_xxs.weight") continue;
    std::vector<float> out(6 * 512);
    try {
      dequantize_to_f32(t.dtype, file.bytes().subspan(t.offset, t.nbytes), out);
      FAIL() << "iq2_xxs should be refused";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("iq2_xxs"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace ditrun
