// Every tensor of ggml-vectors.gguf was quantized by ggml itself; its `.expected` twin is
// what ggml's dequantize_row_* returns. Our decoders must reproduce it to within 1 ulp.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "models/formats/gguf.h"
#include "models/formats/mapped_file.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun {
namespace {

const std::string kVectors = test::testdata("gguf/ggml-vectors.gguf");
const std::vector<std::string> kTypes = {"f32",    "f16",    "bf16",    "q8_0",  "q6_K",   "q5_K",    "q5_1",
                                         "q5_0",   "q4_K",   "q4_1",    "q4_0",  "q3_K",   "q2_K",    "iq4_nl",
                                         "iq4_xs", "iq3_s",  "iq3_xxs", "iq2_s", "iq2_xs", "iq2_xxs", "iq1_s",
                                         "iq1_m",  "tq1_0",  "tq2_0",   "mxfp4"};

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

INSTANTIATE_TEST_SUITE_P(EveryTypeInTheFile, GgmlVectors, ::testing::ValuesIn(kTypes));

// A type added to the file gets tested: every tensor in it is one of kTypes.
TEST(GgmlVectors, EveryTensorInTheFileIsTested) {
  formats::MappedFile file(kVectors);
  const formats::GgufIndex index = formats::parse_gguf(file.bytes(), kVectors);
  for (const auto& t : index.tensors) {
    const std::string type = t.name.substr(0, t.name.find('.'));
    EXPECT_NE(std::find(kTypes.begin(), kTypes.end(), type), kTypes.end()) << t.name;
  }
}

// Types ditrun has no decoder for (the newest GGUF types) are refused with their name.
TEST(GgmlVectors, UndecodableTypesAreRefusedClearly) {
  int refused = 0;
  for (const DTypeInfo& row : all_dtypes()) {
    if (row.to_f32) continue;
    ++refused;
    std::vector<uint8_t> bytes(size_t(row.block_bytes));
    std::vector<float> out(size_t(row.block_elems));
    try {
      dequantize_to_f32(row.type, bytes, out);
      ADD_FAILURE() << row.name << " should be refused";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(row.name), std::string::npos) << e.what();
    }
  }
  EXPECT_GE(refused, 1);
  EXPECT_EQ(dtype_info(DType::NVFP4).to_f32, nullptr);
}

}  // namespace
}  // namespace ditrun
