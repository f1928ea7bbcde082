// GGUF reader and writer: round trips, byte-exact rewrites of the reference files (which
// gguf-py wrote), and a malformed-file suite mirroring what ggml's loader rejects
// (shared/reference/formats.md section 1.4). Every malformed case must end in a
// ditrun::Error naming the file and the field; any other exception fails the test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

#include "models/formats/gguf.h"
#include "models/formats/mapped_file.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun::formats {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;

constexpr const char* kFile = "fixture.gguf";
constexpr uint32_t kMagic = 0x46554747;
constexpr uint32_t kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9, kU64 = 10;
constexpr uint32_t kTypeF32 = 0, kTypeF16 = 1, kTypeQ4_0 = 2, kTypeQ8_0 = 8, kTypeQ4_K = 12;

// Little-endian byte builder for hand-made (and deliberately broken) files.
struct Bytes {
  std::vector<uint8_t> data;
  template <class T>
  Bytes& put(T v) {
    const size_t at = data.size();
    data.resize(at + sizeof(T));
    std::memcpy(data.data() + at, &v, sizeof(T));
    return *this;
  }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& str(std::string_view s) {
    u64(s.size());
    data.insert(data.end(), s.begin(), s.end());
    return *this;
  }
};

Bytes u32_value(uint32_t v) { return Bytes().u32(v); }
Bytes string_value(std::string_view s) { return Bytes().str(s); }

struct RawKv {
  std::string key;
  uint32_t type;
  Bytes value;
};

struct RawTensor {
  std::string name;
  std::vector<int64_t> ne;  // ggml order, innermost first
  uint32_t type;
  uint64_t offset;
};

uint64_t raw_tensor_bytes(const RawTensor& t) {
  const auto dtype = dtype_from_gguf_id(t.type);
  if (!dtype) return 0;
  // Forged shapes (negative, overflowing) get no data: the test sets data_bytes itself.
  int64_t n = 1, bytes = 0;
  for (int64_t d : t.ne)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return 0;
  const DTypeInfo& row = dtype_info(*dtype);
  if (__builtin_mul_overflow(n / row.block_elems, row.block_bytes, &bytes) || bytes > (int64_t(1) << 20)) return 0;
  return uint64_t(bytes);
}

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// A GGUF file described field by field, so each test can break exactly one field.
struct RawGguf {
  uint32_t magic = kMagic;
  uint32_t version = 3;
  std::optional<uint64_t> n_tensors, n_kv;  // forged counts; default: the real ones
  std::vector<RawKv> kvs;
  std::vector<RawTensor> tensors;
  uint32_t alignment = 32;             // used for the padding before the data section
  std::optional<uint64_t> data_bytes;  // default: enough for every tensor, padded

  size_t header_end = 0;  // set by build(): where the tensor infos end

  std::vector<uint8_t> build() {
    Bytes b;
    b.u32(magic).u32(version).u64(n_tensors.value_or(tensors.size())).u64(n_kv.value_or(kvs.size()));
    for (const auto& kv : kvs) {
      b.str(kv.key).u32(kv.type);
      b.data.insert(b.data.end(), kv.value.data.begin(), kv.value.data.end());
    }
    for (const auto& t : tensors) {
      b.str(t.name).u32(uint32_t(t.ne.size()));
      for (int64_t d : t.ne) b.put<int64_t>(d);
      b.u32(t.type).u64(t.offset);
    }
    header_end = b.data.size();
    if (tensors.empty() && !data_bytes) return b.data;
    b.data.resize(align_up(b.data.size(), alignment), 0);
    uint64_t need = 0;
    for (const auto& t : tensors) need = std::max(need, t.offset + raw_tensor_bytes(t));
    const uint64_t data = data_bytes.value_or(align_up(need, alignment));
    for (uint64_t i = 0; i < data; ++i) b.data.push_back(uint8_t(i * 7 + 1));
    return b.data;
  }
};

// A small valid file: three tensors of three types, metadata of several kinds.
RawGguf small_gguf() {
  RawGguf g;
  g.kvs.push_back({"general.architecture", kString, string_value("test")});
  g.kvs.push_back({"general.alignment", kU32, u32_value(32)});
  g.kvs.push_back({"ints", kArray, Bytes().u32(kI32).u64(3).u32(1).u32(2).u32(uint32_t(-3))});
  g.kvs.push_back({"scale", kF32, Bytes().put<float>(1.5f)});
  g.tensors.push_back({"a", {4, 2}, kTypeF32, 0});     // 32 bytes
  g.tensors.push_back({"b", {32, 1}, kTypeQ8_0, 32});  // 34 bytes
  g.tensors.push_back({"c", {3}, kTypeF16, 96});       // 6 bytes
  return g;
}

// The message of the ditrun::Error parsing `bytes` throws; other exceptions escape and fail.
std::string gguf_error(const std::vector<uint8_t>& bytes) {
  try {
    parse_gguf(bytes, kFile);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "parsed without an error";
  return "";
}

auto names(const std::string& field) { return AllOf(HasSubstr(kFile), HasSubstr(field)); }

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = uint8_t(rng());
  return out;
}

// Exact equality of two metadata values, recursing into arrays.
bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type || a.value.index() != b.value.index()) return false;
  if (a.type == GgufType::ARRAY) {
    const auto& x = std::get<std::vector<GgufValue>>(a.value);
    const auto& y = std::get<std::vector<GgufValue>>(b.value);
    if (a.elem_type != b.elem_type || x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i)
      if (!same_value(x[i], y[i])) return false;
    return true;
  }
  return std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::vector<GgufValue>>) return false;
        else return v == std::get<T>(b.value);
      },
      a.value);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ---------------------------------------------------------------------------------------
// Valid files

TEST(Gguf, SmallFixtureParses) {
  RawGguf g = small_gguf();
  const auto bytes = g.build();
  const GgufIndex index = parse_gguf(bytes, kFile);
  EXPECT_EQ(index.version, 3u);
  EXPECT_EQ(index.alignment, 32u);
  EXPECT_EQ(index.data_start, align_up(g.header_end, 32));
  ASSERT_EQ(index.tensors.size(), 3u);
  EXPECT_EQ(index.tensors[0].shape, (Shape{2, 4}));
  EXPECT_EQ(index.tensors[1].dtype, DType::Q8_0);
  EXPECT_EQ(index.tensors[1].nbytes, 34u);
  EXPECT_EQ(index.tensors[2].offset, index.data_start + 96);
  EXPECT_EQ(index.find("general.architecture")->as_string(), "test");
  const auto& ints = std::get<std::vector<GgufValue>>(index.find("ints")->value);
  ASSERT_EQ(ints.size(), 3u);
  EXPECT_EQ(ints[2].as_int(), -3);
  EXPECT_EQ(std::get<double>(index.find("scale")->value), 1.5);
}

TEST(Gguf, WriterRoundTripKeepsMetadataShapesAndBytes) {
  const std::string path = test::temp_dir("gguf-rt") + "/rt.gguf";
  std::vector<std::pair<std::string, GgufValue>> meta = {
      {"general.architecture", GgufValue::string("flux")},
      {"u8", {GgufType::U8, GgufType::U8, uint64_t(200)}},
      {"i8", {GgufType::I8, GgufType::U8, int64_t(-100)}},
      {"u16", {GgufType::U16, GgufType::U8, uint64_t(60000)}},
      {"i16", {GgufType::I16, GgufType::U8, int64_t(-30000)}},
      {"u32", GgufValue::u32(4000000000u)},
      {"i32", {GgufType::I32, GgufType::U8, int64_t(-2000000000)}},
      {"f32", {GgufType::F32, GgufType::U8, double(0.25f)}},
      {"bool", {GgufType::BOOL, GgufType::U8, true}},
      {"u64", {GgufType::U64, GgufType::U8, uint64_t(1) << 63}},
      {"i64", {GgufType::I64, GgufType::U8, int64_t(-1) << 62}},
      {"f64", {GgufType::F64, GgufType::U8, 3.141592653589793}},
      {"empty_string", GgufValue::string("")},
      {"shape", GgufValue::i32_array({3, 1, 2})},
      {"strings", {GgufType::ARRAY, GgufType::STRING,
                   std::vector<GgufValue>{GgufValue::string("a"), GgufValue::string("bc")}}},
      {"empty_array", {GgufType::ARRAY, GgufType::F32, std::vector<GgufValue>{}}},
  };
  const std::vector<GgufEntry> entries = {
      {"f32", DType::F32, {2, 3}},         {"f16", DType::F16, {5}},
      {"bf16", DType::BF16, {2, 2, 2}},    {"q8_0", DType::Q8_0, {2, 64}},
      {"q4_k", DType::Q4_K, {1, 256}},     {"i32", DType::I32, {3}},
      {"five_d", DType::F32, {6, 4, 1, 2, 2}}, {"empty", DType::F32, {0, 8}},
      {"scalar", DType::F32, {}},
  };
  std::vector<std::vector<uint8_t>> payloads;
  {
    GgufWriter w(path, meta, entries);
    uint32_t seed = 1;
    for (const auto& e : entries) {
      payloads.push_back(random_bytes(size_t(dtype_bytes(e.dtype, element_count(e.shape), e.name)), seed++));
      w.write_next(payloads.back());
    }
    w.finish();
  }
  MappedFile file(path);
  const GgufIndex index = parse_gguf(file.bytes(), path);
  ASSERT_EQ(index.metadata.size(), meta.size());
  for (size_t i = 0; i < meta.size(); ++i) {
    EXPECT_EQ(index.metadata[i].first, meta[i].first);
    EXPECT_TRUE(same_value(index.metadata[i].second, meta[i].second)) << meta[i].first;
  }
  ASSERT_EQ(index.tensors.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const TensorRecord& t = index.tensors[i];
    EXPECT_EQ(t.name, entries[i].name);
    EXPECT_EQ(t.dtype, entries[i].dtype) << t.name;
    EXPECT_EQ(t.shape, entries[i].shape) << t.name;
    EXPECT_EQ((t.offset - index.data_start) % 32, 0u) << t.name;
    const auto got = file.bytes().subspan(t.offset, t.nbytes);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), payloads[i].begin(), payloads[i].end())) << t.name;
  }
}

TEST(Gguf, WriterHonoursAlignmentOneAndSixtyFour) {
  for (uint32_t alignment : {1u, 64u}) {
    const std::string path = test::temp_dir("gguf-align") + "/a.gguf";
    const std::vector<GgufEntry> entries = {{"x", DType::F16, {3}}, {"y", DType::F32, {5}}};
    GgufWriter w(path, {{"general.architecture", GgufValue::string("t")}}, entries, alignment);
    w.write_next(random_bytes(6, 1));
    w.write_next(random_bytes(20, 2));
    w.finish();
    MappedFile file(path);
    const GgufIndex index = parse_gguf(file.bytes(), path);
    EXPECT_EQ(index.alignment, alignment);
    ASSERT_NE(index.find("general.alignment"), nullptr);
    EXPECT_EQ(index.tensors[1].offset - index.data_start, align_up(6, alignment));
    EXPECT_EQ(index.data_start % alignment, 0u);
  }
}

TEST(Gguf, WriterRejectsMisuse) {
  const std::string dir = test::temp_dir("gguf-misuse");
  EXPECT_THROW(GgufWriter(dir + "/a.gguf", {}, {}, 3), Error);
  EXPECT_THROW(GgufWriter(dir + "/b.gguf", {}, {{"fp8", DType::F8_E4M3, {4}}}), Error);
  EXPECT_THROW(GgufWriter(dir + "/c.gguf", {}, {{"x", DType::F32, {1}}, {"x", DType::F32, {1}}}), Error);
  EXPECT_THROW(GgufWriter(dir + "/d.gguf", {}, {{"q", DType::Q4_0, {2, 48}}}), Error);
  GgufWriter w(dir + "/e.gguf", {}, {{"x", DType::F32, {2}}});
  EXPECT_THROW(w.write_next(random_bytes(4, 1)), Error);
  EXPECT_THROW(w.finish(), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/e.gguf"));
}

// gguf-py wrote the reference files; rewriting every key and tensor must give the same bytes.
TEST(Gguf, RewritingReferenceFilesIsByteIdentical) {
  std::vector<std::string> files = {test::testdata("gguf/ggml-vectors.gguf")};
  for (const auto& e : std::filesystem::directory_iterator(test::testdata("reference")))
    if (e.path().extension() == ".gguf") files.push_back(e.path().string());
  ASSERT_GE(files.size(), 4u);
  for (const auto& src : files) {
    SCOPED_TRACE(src);
    MappedFile in(src);
    const GgufIndex index = parse_gguf(in.bytes(), src);
    std::vector<GgufEntry> entries;
    for (const auto& t : index.tensors) entries.push_back({t.name, t.dtype, t.shape});
    const std::string out = test::temp_dir("gguf-rewrite") + "/out.gguf";
    GgufWriter w(out, index.metadata, entries, index.alignment);
    for (const auto& t : index.tensors) w.write_next(in.bytes().subspan(t.offset, t.nbytes));
    w.finish();
    const auto got = read_file(out);
    ASSERT_EQ(got.size(), in.size());
    const auto mismatch = std::mismatch(got.begin(), got.end(), in.bytes().begin());
    EXPECT_TRUE(mismatch.first == got.end()) << "first difference at byte " << (mismatch.first - got.begin());
  }
}

TEST(Gguf, ReferenceWanFileHasPyTorchShapes) {
  const std::string path = test::testdata("reference/wan21-tiny-t2v-Q5_0.gguf");
  MappedFile file(path);
  const GgufIndex index = parse_gguf(file.bytes(), path);
  EXPECT_EQ(index.find("general.architecture")->as_string(), "wan");
  auto get = [&](std::string_view name) -> const TensorRecord& {
    for (const auto& t : index.tensors)
      if (t.name == name) return t;
    throw std::runtime_error("missing " + std::string(name));
  };
  EXPECT_EQ(get("patch_embedding.weight").dtype, DType::F32);
  EXPECT_EQ(get("patch_embedding.weight").shape, (Shape{96, 16, 1, 2, 2}));
  EXPECT_EQ(get("blocks.0.modulation").dtype, DType::F32);
  EXPECT_EQ(get("blocks.0.modulation").shape, (Shape{1, 6, 96}));
  EXPECT_EQ(get("blocks.0.ffn.0.weight").dtype, DType::Q5_0);
  EXPECT_EQ(get("blocks.0.ffn.0.weight").shape, (Shape{160, 96}));
  EXPECT_EQ(get("blocks.0.ffn.0.weight").nbytes, uint64_t(160 * 96 / 32 * 22));
  EXPECT_EQ(get("text_embedding.0.weight").dtype, DType::BF16);
  for (const auto& t : index.tensors) EXPECT_EQ((t.offset - index.data_start) % index.alignment, 0u) << t.name;
}

TEST(Gguf, ReferenceFluxQ4KFallsBackToF16ForRowsOf128) {
  const std::string path = test::testdata("reference/flux-tiny-dev-Q4_K.gguf");
  MappedFile file(path);
  const GgufIndex index = parse_gguf(file.bytes(), path);
  EXPECT_EQ(index.find("general.architecture")->as_string(), "flux");
  int q4k = 0;
  for (const auto& t : index.tensors) {
    if (t.name == "double_blocks.0.img_mlp.2.weight") {
      EXPECT_EQ(t.dtype, DType::Q4_K);
      EXPECT_EQ(t.shape, (Shape{128, 512}));
    }
    if (t.name == "double_blocks.0.img_attn.qkv.weight") {
      EXPECT_EQ(t.dtype, DType::F16);
      EXPECT_EQ(t.shape, (Shape{384, 128}));
    }
    if (t.dtype == DType::Q4_K) {
      ++q4k;
      EXPECT_EQ(t.shape.back() % 256, 0) << t.name;
    }
    // Every 2-D weight with rows of 128 is stored F16 (or BF16 for embeddings), never Q4_K.
    if (t.shape.size() == 2 && t.shape.back() == 128) {
      EXPECT_NE(t.dtype, DType::Q4_K) << t.name;
    }
  }
  EXPECT_GT(q4k, 0);
}

TEST(Gguf, AcceptsFiveDimsLongNamesZeroElementsAndScalars) {
  RawGguf g;
  const std::string long_name(100, 'n');
  g.tensors.push_back({"five", {2, 2, 1, 16, 96}, kTypeF32, 0});  // 24576 bytes
  g.tensors.push_back({long_name, {8}, kTypeF32, 24576});
  g.tensors.push_back({"empty", {0, 4}, kTypeF32, 24608});
  g.tensors.push_back({"empty_q", {0}, kTypeQ4_0, 24608});
  g.tensors.push_back({"scalar", {}, kTypeF32, 24608});
  const auto bytes = g.build();
  const GgufIndex index = parse_gguf(bytes, kFile);
  ASSERT_EQ(index.tensors.size(), 5u);
  EXPECT_EQ(index.tensors[0].shape, (Shape{96, 16, 1, 2, 2}));
  EXPECT_EQ(index.tensors[1].name, long_name);
  EXPECT_EQ(index.tensors[2].shape, (Shape{4, 0}));
  EXPECT_EQ(index.tensors[2].nbytes, 0u);
  EXPECT_EQ(index.tensors[3].nbytes, 0u);
  EXPECT_EQ(index.tensors[4].shape, Shape{});
  EXPECT_EQ(index.tensors[4].nbytes, 4u);
}

TEST(Gguf, AcceptsZeroTensors) {
  RawGguf g;
  g.kvs.push_back({"general.architecture", kString, string_value("x")});
  auto bytes = g.build();
  GgufIndex index = parse_gguf(bytes, kFile);
  EXPECT_TRUE(index.tensors.empty());
  EXPECT_EQ(index.data_start, bytes.size());  // no padding without tensors, as in ggml

  RawGguf empty;
  bytes = empty.build();
  EXPECT_EQ(bytes.size(), 24u);
  index = parse_gguf(bytes, kFile);
  EXPECT_TRUE(index.tensors.empty());
  EXPECT_TRUE(index.metadata.empty());
}

TEST(Gguf, AcceptsAlignmentOneAndSixtyFour) {
  RawGguf one;
  one.alignment = 1;
  one.kvs.push_back({"general.alignment", kU32, u32_value(1)});
  one.tensors.push_back({"a", {3}, kTypeF16, 0});
  one.tensors.push_back({"b", {1}, kTypeF32, 6});  // 6 is not 4-aligned: fine with alignment 1
  auto bytes = one.build();
  GgufIndex index = parse_gguf(bytes, kFile);
  EXPECT_EQ(index.alignment, 1u);
  EXPECT_EQ(index.data_start, one.header_end);
  EXPECT_EQ(index.tensors[1].offset, one.header_end + 6);

  RawGguf sixty_four;
  sixty_four.alignment = 64;
  sixty_four.kvs.push_back({"general.alignment", kU32, u32_value(64)});
  sixty_four.tensors.push_back({"a", {3}, kTypeF16, 0});
  sixty_four.tensors.push_back({"b", {1}, kTypeF32, 64});
  bytes = sixty_four.build();
  index = parse_gguf(bytes, kFile);
  EXPECT_EQ(index.alignment, 64u);
  EXPECT_EQ(index.data_start % 64, 0u);

  sixty_four.tensors[1].offset = 32;  // aligned to the default but not to 64
  EXPECT_THAT(gguf_error(sixty_four.build()), names("tensor 'b' offset 32"));
}

TEST(Gguf, AcceptsVersionTwoAndUnknownKeys) {
  RawGguf g = small_gguf();
  g.version = 2;
  g.kvs.push_back({"some.vendor.key", kU64, Bytes().u64(7)});
  g.kvs.push_back({"flag", kBool, Bytes().put<uint8_t>(2)});  // ggml reads any non-zero as true
  const auto bytes = g.build();
  const GgufIndex index = parse_gguf(bytes, kFile);
  EXPECT_EQ(index.version, 2u);
  EXPECT_EQ(std::get<bool>(index.find("flag")->value), true);
}

// ---------------------------------------------------------------------------------------
// Malformed files

TEST(GgufMalformed, TruncationAtEveryByteIsAnError) {
  RawGguf g = small_gguf();
  const auto bytes = g.build();
  ASSERT_LT(bytes.size(), 1000u);
  // Up to the end of the last tensor's bytes; only its trailing padding may be cut off
  // (ggml would want it, but no tensor reads it).
  const size_t data_end = align_up(g.header_end, 32) + 96 + 6;
  for (size_t cut = 0; cut < data_end; ++cut) {
    SCOPED_TRACE("cut at byte " + std::to_string(cut));
    // An exact-size copy, so a sanitizer build catches any read past the end.
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + ptrdiff_t(cut));
    const std::string msg = gguf_error(prefix);
    EXPECT_THAT(msg, HasSubstr(kFile));
    if (cut < g.header_end) {
      EXPECT_THAT(msg, AnyOf(HasSubstr("truncated:"), HasSubstr("count")));
    } else {
      EXPECT_THAT(msg, HasSubstr("data section"));  // the padding, or a tensor running past the end
    }
  }
  EXPECT_NO_THROW(parse_gguf(std::span(bytes).first(data_end), kFile));
  EXPECT_NO_THROW(parse_gguf(bytes, kFile));
}

TEST(GgufMalformed, TruncationMessagesNameTheField) {
  RawGguf g = small_gguf();
  const auto bytes = g.build();
  auto cut = [&](size_t n) { return std::vector<uint8_t>(bytes.begin(), bytes.begin() + ptrdiff_t(n)); };
  EXPECT_THAT(gguf_error(cut(2)), names("magic"));
  EXPECT_THAT(gguf_error(cut(6)), names("version"));
  EXPECT_THAT(gguf_error(cut(12)), names("tensor count"));
  EXPECT_THAT(gguf_error(cut(20)), names("metadata count"));
  size_t kv_end = 24;  // where each KV ends
  std::vector<size_t> ends;
  for (const auto& kv : g.kvs) ends.push_back(kv_end += 8 + kv.key.size() + 4 + kv.value.data.size());
  EXPECT_THAT(gguf_error(cut(ends[1] + 10)), names("metadata key #2"));
  EXPECT_THAT(gguf_error(cut(ends[3] - 2)), names("metadata 'scale'"));
  EXPECT_THAT(gguf_error(cut(g.header_end - 3)), names("tensor 'c' offset"));
}

TEST(GgufMalformed, BadMagic) {
  RawGguf g = small_gguf();
  g.magic = 0x47475546;  // "FUGG"
  EXPECT_THAT(gguf_error(g.build()), names("magic"));
}

TEST(GgufMalformed, BadVersions) {
  for (uint32_t version : {0u, 1u, 4u, 0x03000000u, 0x00030000u, 0xFFFFFFFFu}) {
    RawGguf g = small_gguf();
    g.version = version;
    EXPECT_THAT(gguf_error(g.build()), names("version")) << version;
  }
}

TEST(GgufMalformed, ForgedCountsFailBeforeAllocating) {
  for (uint64_t n : {uint64_t(1) << 40, ~uint64_t(0), uint64_t(1) << 63, uint64_t(1000)}) {
    RawGguf g = small_gguf();
    g.n_tensors = n;
    EXPECT_THAT(gguf_error(g.build()), names("tensor count")) << n;
    g = small_gguf();
    g.n_kv = n;
    EXPECT_THAT(gguf_error(g.build()), names("metadata count")) << n;
  }
}

TEST(GgufMalformed, ForgedStringLengths) {
  for (uint64_t len : {~uint64_t(0), (uint64_t(1) << 30) + 1, uint64_t(1) << 29, uint64_t(4096)}) {
    RawGguf g = small_gguf();
    // Key length: rebuild the first KV with a forged length field.
    auto bytes = g.build();
    std::memcpy(bytes.data() + 24, &len, 8);
    EXPECT_THAT(gguf_error(bytes), names("metadata key #0")) << len;

    g = small_gguf();
    g.kvs[0].value = Bytes().u64(len).str("");  // string value with a forged length
    EXPECT_THAT(gguf_error(g.build()), names("metadata 'general.architecture'")) << len;

    g = small_gguf();
    bytes = g.build();
    // The first tensor name's length field sits right after the last KV.
    size_t at = 24;
    for (const auto& kv : g.kvs) at += 8 + kv.key.size() + 4 + kv.value.data.size();
    std::memcpy(bytes.data() + at, &len, 8);
    EXPECT_THAT(gguf_error(bytes), names("tensor #0 name")) << len;
  }
}

TEST(GgufMalformed, ForgedArrayCounts) {
  struct Case {
    uint32_t elem;
    uint64_t count;
  };
  for (const Case c : {Case{kU64, uint64_t(1) << 40}, Case{kU64, uint64_t(1) << 29}, Case{0, uint64_t(1) << 30},
                       Case{kString, uint64_t(1) << 30}, Case{kString, 1000}, Case{kI32, ~uint64_t(0)}}) {
    RawGguf g = small_gguf();
    g.kvs[2].value = Bytes().u32(c.elem).u64(c.count).u32(1);
    EXPECT_THAT(gguf_error(g.build()), names("metadata 'ints'")) << c.elem << " x " << c.count;
  }
}

TEST(GgufMalformed, NestedArrays) {
  RawGguf g = small_gguf();
  g.kvs[2].value = Bytes().u32(kArray).u64(1).u32(kI32).u64(1).u32(5);
  EXPECT_THAT(gguf_error(g.build()), AllOf(names("metadata 'ints'"), HasSubstr("array of arrays")));
}

TEST(GgufMalformed, UnknownValueTypes) {
  for (uint32_t type : {13u, 100u, 0xFFFFFFFFu}) {
    RawGguf g = small_gguf();
    g.kvs[3].type = type;
    EXPECT_THAT(gguf_error(g.build()), AllOf(names("metadata 'scale'"), HasSubstr("unknown value type")));
    g = small_gguf();
    g.kvs[2].value = Bytes().u32(type).u64(1).u32(1);
    EXPECT_THAT(gguf_error(g.build()), AllOf(names("metadata 'ints'"), HasSubstr("unknown element type")));
  }
}

TEST(GgufMalformed, EmptyAndDuplicateKeys) {
  RawGguf g = small_gguf();
  g.kvs[3].key = "";
  EXPECT_THAT(gguf_error(g.build()), AllOf(names("metadata key #3"), HasSubstr("empty")));
  g = small_gguf();
  g.kvs[3].key = "general.architecture";
  EXPECT_THAT(gguf_error(g.build()), names("duplicate metadata key 'general.architecture'"));
}

TEST(GgufMalformed, DuplicateAndEmptyTensorNames) {
  RawGguf g = small_gguf();
  g.tensors[2].name = "a";
  EXPECT_THAT(gguf_error(g.build()), names("duplicate tensor name 'a'"));
  g = small_gguf();
  g.tensors[1].name = "";
  EXPECT_THAT(gguf_error(g.build()), names("tensor #1"));
}

TEST(GgufMalformed, AlignmentOfWrongType) {
  for (const RawKv& kv : {RawKv{"general.alignment", kU64, Bytes().u64(32)},
                          RawKv{"general.alignment", kI32, Bytes().u32(32)},
                          RawKv{"general.alignment", kString, string_value("32")},
                          RawKv{"general.alignment", kArray, Bytes().u32(kU32).u64(1).u32(32)}}) {
    RawGguf g = small_gguf();
    g.kvs[1] = kv;
    EXPECT_THAT(gguf_error(g.build()), names("general.alignment")) << kv.type;
  }
}

TEST(GgufMalformed, AlignmentZeroOrNotPowerOfTwo) {
  for (uint32_t a : {0u, 3u, 48u, 0x80000001u}) {
    RawGguf g = small_gguf();
    g.kvs[1].value = u32_value(a);
    EXPECT_THAT(gguf_error(g.build()), names("general.alignment")) << a;
  }
}

TEST(GgufMalformed, TooManyDims) {
  for (size_t dims : {9u, 64u}) {
    RawGguf g = small_gguf();
    g.tensors[0].ne.assign(dims, 1);
    EXPECT_THAT(gguf_error(g.build()), names("tensor 'a'")) << dims;
  }
  RawGguf g = small_gguf();
  auto bytes = g.build();
  // A forged dim count of 2^32-1 must fail on the bound, not read or allocate that many.
  size_t at = 24;
  for (const auto& kv : g.kvs) at += 8 + kv.key.size() + 4 + kv.value.data.size();
  const uint32_t huge = 0xFFFFFFFF;
  std::memcpy(bytes.data() + at + 8 + 1, &huge, 4);
  EXPECT_THAT(gguf_error(bytes), names("tensor 'a'"));
}

TEST(GgufMalformed, NegativeDims) {
  for (int64_t bad : {int64_t(-1), INT64_MIN}) {
    RawGguf g = small_gguf();
    g.tensors[0].ne = {4, bad};
    EXPECT_THAT(gguf_error(g.build()), AllOf(names("tensor 'a' dim 1"), HasSubstr("negative")));
  }
}

TEST(GgufMalformed, ElementAndByteCountOverflow) {
  RawGguf g = small_gguf();
  g.tensors[0].ne = {int64_t(1) << 32, int64_t(1) << 32};
  EXPECT_THAT(gguf_error(g.build()), names("tensor 'a'"));
  g = small_gguf();
  g.tensors[0].ne = {int64_t(1) << 62};  // fits int64 as elements, not as F32 bytes
  EXPECT_THAT(gguf_error(g.build()), names("tensor 'a'"));
}

TEST(GgufMalformed, UnknownTypeIds) {
  for (uint32_t id : {43u, 100u, 0xFFFFFFFFu}) {
    RawGguf g = small_gguf();
    g.tensors[2].type = id;
    EXPECT_THAT(gguf_error(g.build()), AllOf(names("tensor 'c'"), HasSubstr("unknown type id")));
  }
}

TEST(GgufMalformed, RemovedTypeIds) {
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u}) {
    RawGguf g = small_gguf();
    g.tensors[2].type = id;
    EXPECT_THAT(gguf_error(g.build()), AllOf(names("tensor 'c'"), HasSubstr("removed"))) << id;
  }
}

TEST(GgufMalformed, InnermostDimNotDivisibleByBlock) {
  RawGguf g = small_gguf();
  g.tensors[1].ne = {48, 1};  // Q8_0 blocks hold 32
  EXPECT_THAT(gguf_error(g.build()), AllOf(names("tensor 'b'"), HasSubstr("block size")));
  g = small_gguf();
  g.tensors[1] = {"b", {128, 2}, kTypeQ4_K, 32};  // rows of 128 cannot be Q4_K
  EXPECT_THAT(gguf_error(g.build()), AllOf(names("tensor 'b'"), HasSubstr("block size")));
}

TEST(GgufMalformed, OffsetNotAligned) {
  for (uint64_t off : {uint64_t(33), uint64_t(40), uint64_t(1)}) {
    RawGguf g = small_gguf();
    g.tensors[1].offset = off;
    g.data_bytes = 256;
    EXPECT_THAT(gguf_error(g.build()), names("tensor 'b' offset")) << off;
  }
}

TEST(GgufMalformed, OffsetOrSizePastTheEnd) {
  for (uint64_t off : {uint64_t(128), uint64_t(1) << 40, ~uint64_t(0) - 31}) {
    RawGguf g = small_gguf();
    g.data_bytes = 128;
    g.tensors[2].offset = off;
    EXPECT_THAT(gguf_error(g.build()), names("tensor 'c' data")) << off;
  }
  RawGguf g = small_gguf();
  g.data_bytes = 100;  // 'c' at 96 needs 6 bytes
  EXPECT_THAT(gguf_error(g.build()), names("tensor 'c' data"));
  g = small_gguf();
  g.data_bytes = 0;
  EXPECT_THAT(gguf_error(g.build()), names("tensor 'a' data"));
}

TEST(GgufMalformed, OverlappingTensors) {
  RawGguf g = small_gguf();
  g.tensors[1].offset = 0;  // 'b' on top of 'a'
  EXPECT_THAT(gguf_error(g.build()), AllOf(names("overlap"), HasSubstr("'a'"), HasSubstr("'b'")));
  g = small_gguf();
  g.tensors[0].ne = {16, 2};  // 'a' grows to 128 bytes, over 'b' and 'c'
  g.data_bytes = 256;
  EXPECT_THAT(gguf_error(g.build()), AllOf(names("overlap"), HasSubstr("'a'")));
}

// A zero-byte tensor between two overlapping ones must not hide the overlap.
TEST(GgufMalformed, OverlapBehindAZeroByteTensor) {
  RawGguf g;
  g.tensors.push_back({"big", {32}, kTypeF32, 0});     // [0, 128)
  g.tensors.push_back({"empty", {0}, kTypeF32, 32});   // [32, 32)
  g.tensors.push_back({"inside", {8}, kTypeF32, 64});  // [64, 96): inside 'big'
  EXPECT_THAT(gguf_error(g.build()), AllOf(names("overlap"), HasSubstr("'big'"), HasSubstr("'inside'")));
}

TEST(GgufMalformed, GarbageInputs) {
  for (size_t n : {0u, 1u, 4u, 23u, 24u, 100u, 4096u}) {
    auto bytes = random_bytes(n, uint32_t(n));
    if (n >= 4) std::memcpy(bytes.data(), "GGUF", 4);
    EXPECT_THAT(gguf_error(bytes), HasSubstr(kFile)) << n;
  }
}

}  // namespace
}  // namespace ditrun::formats
