// Tensor messages: what goes in comes out bit for bit, and every malformed byte string
// (truncated anywhere, counts and dims that cannot fit, duplicates, bad JSON) is an Error
// naming what is wrong.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/core/error.h"
#include "transport/tensor_message.h"

namespace ditrun::transport {
namespace {

using ::testing::HasSubstr;

TensorMessage sample() {
  TensorMessage m;
  m.header = {{"job", "cat-1"}, {"step", 3}, {"sigmas", {1.0, 0.5, 0.0}}, {"nested", {{"a", {{"b", nullptr}}}}}};
  m.ints["step"] = 3;
  m.ints["min"] = std::numeric_limits<int64_t>::min();
  m.ints["max"] = std::numeric_limits<int64_t>::max();
  HostTensor img({2, 3, 4});
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = 0.5f * float(i) - 3.f;
  img.data[0] = std::numeric_limits<float>::quiet_NaN();
  img.data[1] = -std::numeric_limits<float>::infinity();
  img.data[2] = -0.0f;
  m.tensors["img"] = std::move(img);
  m.tensors["scalar"] = HostTensor({}, {42.f});
  m.tensors["empty"] = HostTensor({0, 7});
  m.tensors["vec"] = HostTensor({1, 1, 1, 1, 5}, {1, 2, 3, 4, 5});
  return m;
}

std::string decode_error(const std::vector<uint8_t>& bytes) {
  try {
    decode_tensor_message(bytes, "test bytes");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Offsets into the encoding of a message with header "{}" and no integers.
constexpr size_t kHeaderLengthAt = 8, kHeaderAt = 16, kCountsAfterEmptyHeader = kHeaderAt + 2;

TEST(TensorMessage, RoundTripKeepsEveryBit) {
  const TensorMessage in = sample();
  const TensorMessage out = decode_tensor_message(encode_tensor_message(in), "round trip");
  EXPECT_EQ(out.header, in.header);
  EXPECT_EQ(out.ints, in.ints);
  ASSERT_EQ(out.tensors.size(), in.tensors.size());
  for (const auto& [name, t] : in.tensors) {
    EXPECT_EQ(out.tensor(name).shape, t.shape) << name;
    EXPECT_TRUE(same_bits(out.tensor(name).data, t.data)) << name;
  }
  EXPECT_TRUE(std::signbit(out.tensor("img").data[2]));
}

TEST(TensorMessage, EmptyMessageRoundTrips) {
  const auto bytes = encode_tensor_message(TensorMessage{});
  EXPECT_EQ(bytes.size(), kCountsAfterEmptyHeader + 16);  // magic, version, "{}", two counts
  const TensorMessage out = decode_tensor_message(bytes, "empty");
  EXPECT_EQ(out.header, nlohmann::json::object());
  EXPECT_TRUE(out.ints.empty());
  EXPECT_TRUE(out.tensors.empty());
}

TEST(TensorMessage, EveryTruncationIsAnError) {
  const auto bytes = encode_tensor_message(sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + std::ptrdiff_t(n));
    EXPECT_THAT(decode_error(cut), HasSubstr("test bytes: ")) << "prefix of " << n << " bytes";
  }
}

TEST(TensorMessage, TrailingBytesAreAnError) {
  auto bytes = encode_tensor_message(sample());
  bytes.push_back(0);
  EXPECT_THAT(decode_error(bytes), HasSubstr("1 bytes follow the last tensor"));
}

TEST(TensorMessage, WrongMagicOrVersionIsNamed) {
  auto bytes = encode_tensor_message(sample());
  bytes[0] = 'X';
  EXPECT_THAT(decode_error(bytes), HasSubstr("not a tensor message"));
  bytes = encode_tensor_message(sample());
  bytes[4] = 9;
  EXPECT_THAT(decode_error(bytes), HasSubstr("version 9"));
}

TEST(TensorMessage, ImpossibleLengthsAndCountsAreRefusedBeforeAllocating) {
  const auto base = encode_tensor_message(TensorMessage{});
  auto bytes = base;
  const uint64_t huge = uint64_t(1) << 62;
  std::memcpy(bytes.data() + kHeaderLengthAt, &huge, 8);
  EXPECT_THAT(decode_error(bytes), HasSubstr("the header needs"));

  bytes = base;
  std::memcpy(bytes.data() + kCountsAfterEmptyHeader, &huge, 8);
  EXPECT_THAT(decode_error(bytes), HasSubstr("integers cannot fit"));
  bytes = base;
  std::memcpy(bytes.data() + kCountsAfterEmptyHeader + 8, &huge, 8);
  EXPECT_THAT(decode_error(bytes), HasSubstr("tensors cannot fit"));
}

// A message with one tensor "t" of shape [3]; returns the offset of its ndim field.
std::vector<uint8_t> one_tensor(size_t* ndim_at) {
  TensorMessage m;
  m.tensors["t"] = HostTensor({3}, {1, 2, 3});
  *ndim_at = kCountsAfterEmptyHeader + 16 + 4 + 1;
  return encode_tensor_message(m);
}

TEST(TensorMessage, BadDimsAreNamed) {
  size_t ndim_at = 0;
  const auto base = one_tensor(&ndim_at);

  auto bytes = base;
  const int64_t negative = -3;
  std::memcpy(bytes.data() + ndim_at + 4, &negative, 8);
  EXPECT_THAT(decode_error(bytes), HasSubstr("tensor 't' has a negative dim -3"));

  bytes = base;
  const int64_t huge = int64_t(1) << 40;
  std::memcpy(bytes.data() + ndim_at + 4, &huge, 8);
  EXPECT_THAT(decode_error(bytes), HasSubstr("tensor 't' of shape [1099511627776] needs more data"));

  bytes = base;
  const uint32_t many = 1000;
  std::memcpy(bytes.data() + ndim_at, &many, 4);
  EXPECT_THAT(decode_error(bytes), HasSubstr("tensor 't' has 1000 dims, more than 16"));
}

TEST(TensorMessage, DuplicateNamesAreRefused) {
  TensorMessage m;
  m.tensors["a"] = HostTensor({1}, {1});
  m.tensors["b"] = HostTensor({1}, {2});
  auto bytes = encode_tensor_message(m);
  // The second name is the byte after the first tensor's 4 + 1 + 4 + 8 + 4 bytes and its length.
  const size_t second_name = kCountsAfterEmptyHeader + 16 + 21 + 4;
  ASSERT_EQ(bytes[second_name], 'b');
  bytes[second_name] = 'a';
  EXPECT_THAT(decode_error(bytes), HasSubstr("tensor 'a' appears twice"));
}

TEST(TensorMessage, BadHeaderJsonIsNamed) {
  auto bytes = encode_tensor_message(TensorMessage{});
  bytes[kHeaderAt + 1] = '{';  // "{{"
  EXPECT_THAT(decode_error(bytes), HasSubstr("header is not valid JSON"));

  TensorMessage deep;
  nlohmann::json j = 1;
  for (int i = 0; i < 100; ++i) j = nlohmann::json::array({j});
  deep.header = j;
  EXPECT_THAT(decode_error(encode_tensor_message(deep)), HasSubstr("nests deeper than 64 levels"));
}

TEST(TensorMessage, HostileNamesStayOnOneLine) {
  TensorMessage m;
  m.tensors["a\nb"] = HostTensor({1}, {1});
  auto bytes = encode_tensor_message(m);
  bytes.pop_back();
  const std::string error = decode_error(bytes);
  EXPECT_THAT(error, HasSubstr("tensor 'a\\x0ab' of shape [1] needs more data"));
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST(TensorMessage, EncodeRefusesInconsistentTensorsAndEmptyNames) {
  TensorMessage m;
  m.tensors["t"].shape = {2, 2};
  m.tensors["t"].data = {1, 2, 3};
  EXPECT_THROW(
      {
        try {
          encode_tensor_message(m);
        } catch (const Error& e) {
          EXPECT_THAT(e.what(), HasSubstr("tensor 't' has shape [2, 2] but 3 values"));
          throw;
        }
      },
      Error);
  TensorMessage unnamed;
  unnamed.ints[""] = 1;
  EXPECT_THROW(encode_tensor_message(unnamed), Error);
  TensorMessage bad_utf8;
  bad_utf8.header = {{"name", "\xff"}};
  EXPECT_THROW(encode_tensor_message(bad_utf8), Error);
}

TEST(TensorMessage, LookupsNameWhatIsMissing) {
  const TensorMessage m = sample();
  try {
    m.tensor("txt");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no tensor 'txt' (it holds empty, img, scalar, vec)"));
  }
  EXPECT_EQ(m.integer("step"), 3);
  EXPECT_THROW(m.integer("steps"), Error);
}

TEST(TensorMessage, ChannelMessageErrorsNameSourceAndTag) {
  try {
    decode_tensor_message(Message{2, 7, {1, 2, 3}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("message from rank 2 tag 7: the magic needs 4 bytes"));
  }
}

}  // namespace
}  // namespace ditrun::transport
