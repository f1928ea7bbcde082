// safetensors reader and writer: round trips, rewrites of the reference files, and a
// malformed-file suite. Every malformed case must end in a ditrun::Error naming the file and
// the field; any other exception fails the test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

#include "models/formats/mapped_file.h"
#include "models/formats/safetensors.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun::formats {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;

constexpr const char* kFile = "fixture.safetensors";

// 8-byte little-endian header length (the real one unless forged), header text, data bytes.
std::vector<uint8_t> st_bytes(const std::string& header, size_t data_bytes, std::optional<uint64_t> forged_len = {}) {
  const uint64_t len = forged_len.value_or(header.size());
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(len >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  for (size_t i = 0; i < data_bytes; ++i) out.push_back(uint8_t(i * 13 + 5));
  return out;
}

// A small valid file: metadata first, then two tensors packed back to back (22 data bytes).
const std::string kSmallHeader =
    R"({"__metadata__":{"format":"pt"},)"
    R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})";

// One-tensor header around an entry body, for the per-field cases.
std::string one(const std::string& body) { return R"({"a":{)" + body + "}}"; }

std::string st_error(const std::vector<uint8_t>& bytes) {
  try {
    parse_safetensors(bytes, kFile);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "parsed without an error";
  return "";
}

std::string st_error(const std::string& header, size_t data_bytes) { return st_error(st_bytes(header, data_bytes)); }

auto names(const std::string& field) { return AllOf(HasSubstr(kFile), HasSubstr(field)); }

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = uint8_t(rng());
  return out;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ---------------------------------------------------------------------------------------
// Valid files

TEST(Safetensors, SmallFixtureParses) {
  const auto bytes = st_bytes(kSmallHeader, 22);
  const SafetensorsIndex index = parse_safetensors(bytes, kFile);
  EXPECT_EQ(index.data_start, 8 + kSmallHeader.size());
  EXPECT_EQ(index.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(index.tensors.size(), 2u);
  EXPECT_EQ(index.tensors[0].name, "a");
  EXPECT_EQ(index.tensors[0].dtype, DType::F32);
  EXPECT_EQ(index.tensors[0].shape, (Shape{2, 2}));
  EXPECT_EQ(index.tensors[0].offset, index.data_start);
  EXPECT_EQ(index.tensors[1].dtype, DType::BF16);
  EXPECT_EQ(index.tensors[1].offset, index.data_start + 16);
  EXPECT_EQ(index.tensors[1].nbytes, 6u);
}

TEST(Safetensors, AcceptsEmptyHeaderObjectAndZeroElementTensors) {
  EXPECT_TRUE(parse_safetensors(st_bytes("{}", 0), kFile).tensors.empty());
  EXPECT_TRUE(parse_safetensors(st_bytes("{}      ", 0), kFile).tensors.empty());  // space padding
  const SafetensorsIndex index = parse_safetensors(
      st_bytes(R"({"e":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},"s":{"dtype":"F16","shape":[],"data_offsets":[0,2]}})", 2),
      kFile);
  ASSERT_EQ(index.tensors.size(), 2u);
  EXPECT_EQ(index.tensors[0].nbytes, 0u);
  EXPECT_EQ(index.tensors[1].shape, Shape{});
  EXPECT_EQ(index.tensors[1].nbytes, 2u);
}

TEST(Safetensors, WriterRoundTripKeepsNamesDtypesShapesMetadataAndBytes) {
  const std::string path = test::temp_dir("st-rt") + "/rt.safetensors";
  const std::vector<SafetensorsEntry> entries = {
      {"f32", DType::F32, {2, 3}},      {"bf16", DType::BF16, {4}},      {"f16", DType::F16, {1, 1, 3}},
      {"e4m3", DType::F8_E4M3, {5}},    {"e5m2", DType::F8_E5M2, {2}},   {"i64", DType::I64, {2}},
      {"u8", DType::U8, {7}},           {"bool", DType::BOOL, {3}},      {"f64", DType::F64, {1}},
      {"empty", DType::F32, {0, 4}},    {"scalar", DType::F32, {}},      {"five_d", DType::BF16, {3, 2, 1, 2, 2}},
      {"model.diffusion_model.x.weight", DType::F32, {1}},
  };
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "quote \" and \\ and \n"}};
  std::vector<std::vector<uint8_t>> payloads;
  {
    SafetensorsWriter w(path, entries, meta);
    uint32_t seed = 1;
    for (const auto& e : entries) {
      payloads.push_back(random_bytes(size_t(dtype_bytes(e.dtype, element_count(e.shape), e.name)), seed++));
      w.write_next(payloads.back());
    }
    w.finish();
  }
  MappedFile file(path);
  const SafetensorsIndex index = parse_safetensors(file.bytes(), path);
  EXPECT_EQ(index.data_start % 8, 0u);  // the writer pads the header like the reference writer
  EXPECT_EQ(index.metadata, meta);
  ASSERT_EQ(index.tensors.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const TensorRecord& t = index.tensors[i];
    EXPECT_EQ(t.name, entries[i].name);
    EXPECT_EQ(t.dtype, entries[i].dtype) << t.name;
    EXPECT_EQ(t.shape, entries[i].shape) << t.name;
    const auto got = file.bytes().subspan(t.offset, t.nbytes);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), payloads[i].begin(), payloads[i].end())) << t.name;
  }
  EXPECT_EQ(file.size(), index.tensors.back().offset + index.tensors.back().nbytes);
}

TEST(Safetensors, WriterRejectsMisuse) {
  const std::string dir = test::temp_dir("st-misuse");
  EXPECT_THROW(SafetensorsWriter(dir + "/a.safetensors", {{"q", DType::Q4_0, {32}}}), Error);
  EXPECT_THROW(SafetensorsWriter(dir + "/b.safetensors", {{"x", DType::F32, {1}}, {"x", DType::F32, {1}}}), Error);
  SafetensorsWriter w(dir + "/c.safetensors", {{"x", DType::F32, {2}}});
  EXPECT_THROW(w.write_next(random_bytes(4, 1)), Error);
  EXPECT_THROW(w.finish(), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/c.safetensors"));
}

// The reference files were written by the safetensors library. Rewriting gives the same
// index and data; files without metadata come out byte-identical (ours writes
// `__metadata__` first and sorted, the reference library last and in insertion order).
TEST(Safetensors, RewritingReferenceFilesKeepsIndexAndData) {
  int files = 0, identical = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::testdata("reference"))) {
    if (e.path().extension() != ".safetensors") continue;
    const std::string src = e.path().string();
    SCOPED_TRACE(src);
    ++files;
    MappedFile in(src);
    const SafetensorsIndex index = parse_safetensors(in.bytes(), src);
    std::vector<SafetensorsEntry> entries;
    for (const auto& t : index.tensors) entries.push_back({t.name, t.dtype, t.shape});
    const std::string out = test::temp_dir("st-rewrite") + "/out.safetensors";
    {
      SafetensorsWriter w(out, entries, index.metadata);
      for (const auto& t : index.tensors) w.write_next(in.bytes().subspan(t.offset, t.nbytes));
      w.finish();
    }
    MappedFile again(out);
    const SafetensorsIndex re = parse_safetensors(again.bytes(), out);
    EXPECT_EQ(re.metadata, index.metadata);
    ASSERT_EQ(re.tensors.size(), index.tensors.size());
    for (size_t i = 0; i < re.tensors.size(); ++i) {
      const TensorRecord& a = index.tensors[i];
      const TensorRecord& b = re.tensors[i];
      EXPECT_EQ(b.name, a.name);
      EXPECT_EQ(b.dtype, a.dtype) << a.name;
      EXPECT_EQ(b.shape, a.shape) << a.name;
      EXPECT_EQ(b.offset - re.data_start, a.offset - index.data_start) << a.name;
      const auto x = in.bytes().subspan(a.offset, a.nbytes);
      const auto y = again.bytes().subspan(b.offset, b.nbytes);
      EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end())) << a.name;
    }
    if (index.metadata.empty()) {
      const auto got = read_file(out);
      EXPECT_TRUE(std::equal(got.begin(), got.end(), in.bytes().begin(), in.bytes().end())) << "not byte-identical";
      ++identical;
    }
  }
  EXPECT_GE(files, 5);
  EXPECT_GE(identical, 3);
}

// ---------------------------------------------------------------------------------------
// Malformed files

TEST(SafetensorsMalformed, TruncationAtEveryByteIsAnError) {
  const auto bytes = st_bytes(kSmallHeader, 22);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    SCOPED_TRACE("cut at byte " + std::to_string(cut));
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + ptrdiff_t(cut));
    const std::string msg = st_error(prefix);
    EXPECT_THAT(msg, HasSubstr(kFile));
    if (cut < 8 + kSmallHeader.size())
      EXPECT_THAT(msg, HasSubstr("header length"));
    else
      EXPECT_THAT(msg, AnyOf(HasSubstr("tensor 'a' data_offsets"), HasSubstr("tensor 'b' data_offsets")));
  }
}

// The header text cut at every byte, with the length field telling the truth about the cut.
TEST(SafetensorsMalformed, HeaderTextTruncatedAtEveryByteIsInvalidJson) {
  for (size_t cut = 0; cut < kSmallHeader.size(); ++cut) {
    SCOPED_TRACE("header cut at " + std::to_string(cut));
    EXPECT_THAT(st_error(kSmallHeader.substr(0, cut), 22), names("header"));
  }
}

TEST(SafetensorsMalformed, HeaderLengthOverTheLimit) {
  for (uint64_t len : {kSafetensorsMaxHeaderBytes + 1, uint64_t(1) << 40, ~uint64_t(0)})
    EXPECT_THAT(st_error(st_bytes("{}", 0, len)), names("header length")) << len;
}

TEST(SafetensorsMalformed, HeaderLengthPastEndOfFile) {
  for (uint64_t len : {uint64_t(3), uint64_t(1000), kSafetensorsMaxHeaderBytes})
    EXPECT_THAT(st_error(st_bytes("{}", 0, len)), names("header length")) << len;
}

TEST(SafetensorsMalformed, InvalidJson) {
  for (const std::string& text : {std::string(""), std::string("{"), std::string(R"({"a":})"),
                                  std::string("not json"), std::string(R"({"a":1,})"), std::string("{} x"),
                                  std::string("{\"\xff\":1}"), std::string(R"({'a':1})"),
                                  std::string("{\"a\0\":1}", 8)})
    EXPECT_THAT(st_error(text, 0), names("header")) << text;
}

TEST(SafetensorsMalformed, HeaderIsNotAnObject) {
  for (const char* text : {"[]", "1", "\"s\"", "null", "true", "[{}]"})
    EXPECT_THAT(st_error(text, 0), names("not a JSON object")) << text;
}

TEST(SafetensorsMalformed, DeeplyNestedJson) {
  constexpr int kDepth = 100000;
  std::string objects, arrays;
  for (int i = 0; i < kDepth; ++i) objects += R"({"a":)";
  objects += "1" + std::string(kDepth, '}');
  arrays = std::string(kDepth, '[') + std::string(kDepth, ']');
  EXPECT_THAT(st_error(objects, 0), names("nested too deeply"));
  EXPECT_THAT(st_error(arrays, 0), names("nested too deeply"));
  EXPECT_THAT(st_error(std::string(kDepth, '['), 0), names("header"));  // unterminated as well
}

TEST(SafetensorsMalformed, MissingOrMistypedFields) {
  struct Case {
    std::string body, field;
  };
  const std::vector<Case> cases = {
      {R"("shape":[1],"data_offsets":[0,4])", "dtype"},
      {R"("dtype":7,"shape":[1],"data_offsets":[0,4])", "dtype"},
      {R"("dtype":"F32","data_offsets":[0,4])", "shape"},
      {R"("dtype":"F32","shape":4,"data_offsets":[0,4])", "shape"},
      {R"("dtype":"F32","shape":[1])", "data_offsets"},
      {R"("dtype":"F32","shape":[1],"data_offsets":[0])", "data_offsets"},
      {R"("dtype":"F32","shape":[1],"data_offsets":[0,4,8])", "data_offsets"},
      {R"("dtype":"F32","shape":[1],"data_offsets":{"0":4})", "data_offsets"},
  };
  for (const auto& c : cases) EXPECT_THAT(st_error(one(c.body), 4), AllOf(names("tensor 'a'"), HasSubstr(c.field))) << c.body;
  EXPECT_THAT(st_error(R"({"a":5})", 4), names("tensor 'a'"));
  EXPECT_THAT(st_error(R"({"a":[1,2]})", 4), names("tensor 'a'"));
}

TEST(SafetensorsMalformed, UnknownDtype) {
  for (const char* dtype : {"F128", "f32", "Q4_0", "", "BF16 "})
    EXPECT_THAT(st_error(one(std::string(R"("dtype":")") + dtype + R"(","shape":[1],"data_offsets":[0,4])"), 4),
                AllOf(names("tensor 'a'"), HasSubstr("dtype")))
        << dtype;
}

TEST(SafetensorsMalformed, BadShapes) {
  for (const char* shape : {"[-1]", "[2,-3]", "[1.5]", "[\"2\"]", "[true]", "[null]", "[[2]]", "[1e3]",
                            "[18446744073709551615]", "[4294967296,4294967296]"})
    EXPECT_THAT(st_error(one(std::string(R"("dtype":"F32","shape":)") + shape + R"(,"data_offsets":[0,4])"), 4),
                names("tensor 'a'"))
        << shape;
  std::string dims17 = "[1";
  for (int i = 0; i < 16; ++i) dims17 += ",1";
  EXPECT_THAT(st_error(one(R"("dtype":"F32","shape":)" + dims17 + R"(],"data_offsets":[0,4])"), 4),
              AllOf(names("tensor 'a'"), HasSubstr("dims")));
}

TEST(SafetensorsMalformed, BadOffsets) {
  struct Case {
    std::string offsets;
    size_t data;
  };
  for (const Case& c : {Case{"[4,0]", 4}, Case{"[8,4]", 8}, Case{"[0,4]", 3}, Case{"[0,8]", 4},
                        Case{"[-4,0]", 4}, Case{"[0.0,4.0]", 4}, Case{"[\"0\",\"4\"]", 4},
                        Case{"[0,18446744073709551615]", 4}, Case{"[9223372036854775807,0]", 4}})
    EXPECT_THAT(st_error(one(R"("dtype":"F32","shape":[1],"data_offsets":)" + c.offsets), c.data),
                names("tensor 'a' data_offsets"))
        << c.offsets;
}

TEST(SafetensorsMalformed, SizeDisagreesWithShapeAndDtype) {
  for (const char* offsets : {"[0,12]", "[0,20]", "[0,0]"})
    EXPECT_THAT(st_error(one(std::string(R"("dtype":"F32","shape":[2,2],"data_offsets":)") + offsets), 32),
                AllOf(names("tensor 'a'"), HasSubstr("shape")))
        << offsets;
}

TEST(SafetensorsMalformed, OverlappingTensors) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  EXPECT_THAT(st_error(header, 16), AllOf(names("overlap"), HasSubstr("'a'"), HasSubstr("'b'")));
  const std::string same = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                           R"("b":{"dtype":"I32","shape":[4],"data_offsets":[0,16]}})";
  EXPECT_THAT(st_error(same, 16), names("overlap"));
}

// A zero-byte tensor between two overlapping ones must not hide the overlap.
TEST(SafetensorsMalformed, OverlapBehindAZeroByteTensor) {
  const std::string header = R"({"big":{"dtype":"F32","shape":[25],"data_offsets":[0,100]},)"
                             R"("empty":{"dtype":"F32","shape":[0],"data_offsets":[40,40]},)"
                             R"("inside":{"dtype":"F32","shape":[5],"data_offsets":[60,80]}})";
  EXPECT_THAT(st_error(header, 100), AllOf(names("overlap"), HasSubstr("'big'"), HasSubstr("'inside'")));
}

TEST(SafetensorsMalformed, DuplicateKeys) {
  const std::string entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  EXPECT_THAT(st_error(R"({"a":)" + entry + R"(,"a":)" + entry + "}", 4), names("duplicate entry 'a'"));
  EXPECT_THAT(st_error(R"({"__metadata__":{},"__metadata__":{}})", 0), names("duplicate entry '__metadata__'"));
}

TEST(SafetensorsMalformed, NonStringMetadata) {
  for (const char* value : {"1", "null", "[]", "{}", "true", "1.5"})
    EXPECT_THAT(st_error(std::string(R"({"__metadata__":{"k":)") + value + "}}", 0), names("__metadata__ value of 'k'"))
        << value;
  for (const char* meta : {"[]", "\"x\"", "1", "null"})
    EXPECT_THAT(st_error(std::string(R"({"__metadata__":)") + meta + "}", 0), names("__metadata__")) << meta;
}

TEST(SafetensorsMalformed, GarbageInputs) {
  for (size_t n : {0u, 7u, 8u, 9u, 100u, 4096u}) {
    auto bytes = random_bytes(n, uint32_t(n));
    if (n >= 8) {
      const uint64_t len = n - 8;
      for (int i = 0; i < 8; ++i) bytes[size_t(i)] = uint8_t(len >> (8 * i));
    }
    if (n == 8) continue;  // an empty header is "" which is invalid JSON: covered above
    EXPECT_THAT(st_error(bytes), HasSubstr(kFile)) << n;
  }
}

}  // namespace
}  // namespace ditrun::formats
