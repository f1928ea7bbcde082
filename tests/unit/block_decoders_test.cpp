// BlockDecoder<T>::decode8, called group by group as the CUDA kernels call it, must give what
// the dtype table's whole-buffer decoder gives (which ggml_vectors_test holds to ggml's own
// output), bit for bit, on ggml's vectors.
#include "runtime/core/codecs/block_decoders.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <initializer_list>
#include <vector>

#include "models/formats/gguf.h"
#include "models/formats/mapped_file.h"
#include "test_paths.h"

namespace ditrun {
namespace {

using codecs::BlockDecoder;
using codecs::visit_block_decoder;

const std::string kVectors = test::testdata("gguf/ggml-vectors.gguf");

TEST(BlockDecoder, GroupByGroupEqualsTheDtypeTableOnGgmlVectors) {
  formats::MappedFile file(kVectors);
  const formats::GgufIndex index = formats::parse_gguf(file.bytes(), kVectors);
  int tested = 0;
  for (const auto& t : index.tensors) {
    const auto bytes = file.bytes().subspan(t.offset, t.nbytes);
    const int64_t n = t.nbytes / dtype_info(t.dtype).block_bytes * dtype_info(t.dtype).block_elems;
    const bool has_decoder = visit_block_decoder(t.dtype, [&](auto decoder) {
      using D = decltype(decoder);
      std::vector<float> whole(static_cast<size_t>(n)), grouped(static_cast<size_t>(n));
      dequantize_to_f32(t.dtype, bytes, whole);
      for (int64_t b = 0; b < n / D::kElems; ++b)
        for (int g = 0; g < int(D::kElems / 8); ++g)
          D::decode8(bytes.data() + b * D::kBytes, g, grouped.data() + b * D::kElems + 8 * g,
                     codecs::host_codebooks());
      int64_t differ = 0;
      for (int64_t i = 0; i < n; ++i)
        differ += std::bit_cast<uint32_t>(whole[size_t(i)]) != std::bit_cast<uint32_t>(grouped[size_t(i)]);
      EXPECT_EQ(differ, 0) << t.name;
      ++tested;
    });
    EXPECT_EQ(has_decoder, dtype_info(t.dtype).kind == DTypeKind::Quantized) << t.name;
  }
  EXPECT_EQ(tested, 22);  // every block type in the file
}

TEST(BlockDecoder, GeometryMatchesTheDtypeTable) {
  for (const DTypeInfo& row : all_dtypes()) {
    const bool has_decoder = visit_block_decoder(row.type, [&](auto decoder) {
      using D = decltype(decoder);
      EXPECT_EQ(D::kElems, row.block_elems) << row.name;
      EXPECT_EQ(D::kBytes, row.block_bytes) << row.name;
      EXPECT_EQ(D::kElems % 8, 0) << row.name;
    });
    // Every block type the dtype table decodes goes through a BlockDecoder, and only those.
    EXPECT_EQ(has_decoder, row.block_elems > 1 && row.to_f32 != nullptr) << row.name;
  }
}

TEST(BlockDecoder, PlainAndUndecodableTypesHaveNone) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::F64, DType::F8_E4M3, DType::F8_E5M2, DType::I8,
                  DType::NVFP4, DType::Q1_0, DType::Q2_0})
    EXPECT_FALSE(visit_block_decoder(t, [](auto) {})) << dtype_name(t);
}

// Properties of the lattice codebooks that a damaged data file would break.
TEST(BlockDecoder, CodebookDataHasTheLatticeShape) {
  const codecs::Codebooks& books = codecs::host_codebooks();
  for (int i = 0; i < 128; ++i) {  // 7 sign bits, the 8th making the count of minus signs even
    EXPECT_EQ(books.ksigns_iq2xs[i] & 127, i);
    EXPECT_EQ(std::popcount(unsigned(books.ksigns_iq2xs[i])) % 2, 0) << i;
  }
  auto bytes_in = [](uint64_t v, int n, std::initializer_list<int> allowed) {
    for (int j = 0; j < n; ++j)
      if (std::find(allowed.begin(), allowed.end(), int((v >> (8 * j)) & 0xFF)) == allowed.end()) return false;
    return true;
  };
  for (int i = 0; i < 256; ++i) EXPECT_TRUE(bytes_in(books.iq2xxs_grid[i], 8, {8, 25, 43})) << i;
  for (int i = 0; i < 512; ++i) EXPECT_TRUE(bytes_in(books.iq2xs_grid[i], 8, {8, 25, 43})) << i;
  for (int i = 0; i < 1024; ++i) EXPECT_TRUE(bytes_in(books.iq2s_grid[i], 8, {8, 25, 43})) << i;
  for (int i = 0; i < 256; ++i) EXPECT_TRUE(bytes_in(books.iq3xxs_grid[i], 4, {4, 12, 20, 28, 36, 44, 52, 62})) << i;
  for (int i = 0; i < 512; ++i) EXPECT_TRUE(bytes_in(books.iq3s_grid[i], 4, {1, 3, 5, 7, 9, 11, 13, 15})) << i;
  for (int i = 0; i < 2048; ++i) EXPECT_TRUE(bytes_in(books.iq1s_grid[i], 8, {0xFF, 0, 1})) << i;
}

}  // namespace
}  // namespace ditrun
