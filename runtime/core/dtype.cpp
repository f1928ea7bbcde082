#include "runtime/core/dtype.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

#include "runtime/core/codecs/codecs.h"
#include "runtime/core/error.h"

namespace ditrun {
namespace {

using K = DTypeKind;
namespace c = codecs;

// One row per storage type, in DType order. Block geometry and GGUF ids follow ggml's
// type traits; safetensors names follow the safetensors spec.
constexpr std::array<DTypeInfo, size_t(DType::Count)> kTable = {{
    {DType::F32, "f32", K::Float, 1, 4, 0, "F32", c::dequant_f32, c::quant_f32},
    {DType::F16, "f16", K::Float, 1, 2, 1, "F16", c::dequant_f16, c::quant_f16},
    {DType::BF16, "bf16", K::Float, 1, 2, 30, "BF16", c::dequant_bf16, c::quant_bf16},
    {DType::F64, "f64", K::Float, 1, 8, 28, "F64", c::dequant_f64, nullptr},
    {DType::F8_E4M3, "f8_e4m3fn", K::Float8, 1, 1, -1, "F8_E4M3", c::dequant_f8_e4m3, c::quant_f8_e4m3},
    {DType::F8_E5M2, "f8_e5m2", K::Float8, 1, 1, -1, "F8_E5M2", c::dequant_f8_e5m2, c::quant_f8_e5m2},
    {DType::F8_E8M0, "f8_e8m0", K::Float8, 1, 1, -1, "F8_E8M0", c::dequant_f8_e8m0, nullptr},
    {DType::I8, "i8", K::Integer, 1, 1, 24, "I8", c::dequant_i8, nullptr},
    {DType::I16, "i16", K::Integer, 1, 2, 25, "I16", c::dequant_i16, nullptr},
    {DType::I32, "i32", K::Integer, 1, 4, 26, "I32", c::dequant_i32, nullptr},
    {DType::I64, "i64", K::Integer, 1, 8, 27, "I64", c::dequant_i64, nullptr},
    {DType::U8, "u8", K::Integer, 1, 1, -1, "U8", c::dequant_u8, nullptr},
    {DType::U16, "u16", K::Integer, 1, 2, -1, "U16", c::dequant_u16, nullptr},
    {DType::U32, "u32", K::Integer, 1, 4, -1, "U32", c::dequant_u32, nullptr},
    {DType::U64, "u64", K::Integer, 1, 8, -1, "U64", c::dequant_u64, nullptr},
    {DType::BOOL, "bool", K::Integer, 1, 1, -1, "BOOL", c::dequant_u8, nullptr},
    {DType::Q4_0, "q4_0", K::Quantized, 32, 18, 2, "", c::dequant_q4_0, c::quant_q4_0},
    {DType::Q4_1, "q4_1", K::Quantized, 32, 20, 3, "", c::dequant_q4_1, c::quant_q4_1},
    {DType::Q5_0, "q5_0", K::Quantized, 32, 22, 6, "", c::dequant_q5_0, c::quant_q5_0},
    {DType::Q5_1, "q5_1", K::Quantized, 32, 24, 7, "", c::dequant_q5_1, c::quant_q5_1},
    {DType::Q8_0, "q8_0", K::Quantized, 32, 34, 8, "", c::dequant_q8_0, c::quant_q8_0},
    {DType::Q8_1, "q8_1", K::Quantized, 32, 36, 9, "", c::dequant_q8_1, nullptr},
    {DType::Q2_K, "q2_K", K::Quantized, 256, 84, 10, "", c::dequant_q2_k, c::quant_q2_k},
    {DType::Q3_K, "q3_K", K::Quantized, 256, 110, 11, "", c::dequant_q3_k, c::quant_q3_k},
    {DType::Q4_K, "q4_K", K::Quantized, 256, 144, 12, "", c::dequant_q4_k, c::quant_q4_k},
    {DType::Q5_K, "q5_K", K::Quantized, 256, 176, 13, "", c::dequant_q5_k, c::quant_q5_k},
    {DType::Q6_K, "q6_K", K::Quantized, 256, 210, 14, "", c::dequant_q6_k, c::quant_q6_k},
    {DType::Q8_K, "q8_K", K::Quantized, 256, 292, 15, "", c::dequant_q8_k, nullptr},
    {DType::IQ2_XXS, "iq2_xxs", K::Quantized, 256, 66, 16, "", c::dequant_iq2_xxs, nullptr},
    {DType::IQ2_XS, "iq2_xs", K::Quantized, 256, 74, 17, "", c::dequant_iq2_xs, nullptr},
    {DType::IQ3_XXS, "iq3_xxs", K::Quantized, 256, 98, 18, "", c::dequant_iq3_xxs, nullptr},
    {DType::IQ1_S, "iq1_s", K::Quantized, 256, 50, 19, "", c::dequant_iq1_s, nullptr},
    {DType::IQ4_NL, "iq4_nl", K::Quantized, 32, 18, 20, "", c::dequant_iq4_nl, c::quant_iq4_nl},
    {DType::IQ3_S, "iq3_s", K::Quantized, 256, 110, 21, "", c::dequant_iq3_s, nullptr},
    {DType::IQ2_S, "iq2_s", K::Quantized, 256, 82, 22, "", c::dequant_iq2_s, nullptr},
    {DType::IQ4_XS, "iq4_xs", K::Quantized, 256, 136, 23, "", c::dequant_iq4_xs, nullptr},
    {DType::IQ1_M, "iq1_m", K::Quantized, 256, 56, 29, "", c::dequant_iq1_m, nullptr},
    {DType::TQ1_0, "tq1_0", K::Quantized, 256, 54, 34, "", c::dequant_tq1_0, nullptr},
    {DType::TQ2_0, "tq2_0", K::Quantized, 256, 66, 35, "", c::dequant_tq2_0, nullptr},
    {DType::MXFP4, "mxfp4", K::Quantized, 32, 17, 39, "", c::dequant_mxfp4, nullptr},
    {DType::NVFP4, "nvfp4", K::Quantized, 64, 36, 40, "", nullptr, nullptr},
    {DType::Q1_0, "q1_0", K::Quantized, 128, 18, 41, "", nullptr, nullptr},
    {DType::Q2_0, "q2_0", K::Quantized, 64, 18, 42, "", nullptr, nullptr},
}};

constexpr bool table_is_in_enum_order() {
  for (size_t i = 0; i < kTable.size(); ++i)
    if (size_t(kTable[i].type) != i) return false;
  return true;
}
static_assert(table_is_in_enum_order(), "kTable rows must follow DType order");

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  return out;
}

const DTypeInfo& decodable(DType type) {
  const DTypeInfo& row = dtype_info(type);
  if (!row.to_f32) fail("dequantizing {} is not supported yet", row.name);
  return row;
}

}  // namespace

const DTypeInfo& dtype_info(DType type) { return kTable.at(size_t(type)); }
std::span<const DTypeInfo> all_dtypes() { return kTable; }

bool gguf_id_is_removed(uint32_t id) {
  return id == 4 || id == 5 || (id >= 31 && id <= 33) || (id >= 36 && id <= 38);
}

std::optional<DType> dtype_from_gguf_id(uint32_t id) {
  for (const auto& row : kTable)
    if (row.gguf_id >= 0 && uint32_t(row.gguf_id) == id) return row.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_safetensors_name(std::string_view name) {
  for (const auto& row : kTable)
    if (!row.safetensors_name.empty() && row.safetensors_name == name) return row.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_user_name(std::string_view name) {
  const std::string n = lower(name);
  if (n == "fp8" || n == "f8" || n == "e4m3" || n == "fp8_e4m3fn" || n == "float8_e4m3fn" || n == "f8_e4m3")
    return DType::F8_E4M3;
  if (n == "e5m2" || n == "fp8_e5m2" || n == "float8_e5m2") return DType::F8_E5M2;
  if (n == "fp16" || n == "half" || n == "float16") return DType::F16;
  if (n == "fp32" || n == "float" || n == "float32") return DType::F32;
  if (n == "bfloat16") return DType::BF16;
  for (const auto& row : kTable)
    if (lower(row.name) == n || lower(row.safetensors_name) == n) return row.type;
  return std::nullopt;
}

int64_t dtype_bytes(DType type, int64_t elems, std::string_view what) {
  const DTypeInfo& row = dtype_info(type);
  if (elems < 0) fail("{}: negative element count {}", what, elems);
  if (elems % row.block_elems != 0)
    fail("{}: {} elements is not a multiple of the {} block size {}", what, elems, row.name, row.block_elems);
  const int64_t blocks = elems / row.block_elems;
  int64_t bytes = 0;
  if (__builtin_mul_overflow(blocks, row.block_bytes, &bytes)) fail("{}: byte size overflows", what);
  return bytes;
}

void dequantize_to_f32(DType type, std::span<const uint8_t> src, std::span<float> dst) {
  const DTypeInfo& row = decodable(type);
  const int64_t n = int64_t(dst.size());
  if (dtype_bytes(type, n, row.name) != int64_t(src.size()))
    fail("{}: {} bytes do not hold {} elements", row.name, src.size(), n);
  if (n > 0) row.to_f32(src.data(), dst.data(), n);  // empty spans may carry null pointers
}

void dequantize_to_bf16(DType type, std::span<const uint8_t> src, std::span<uint16_t> dst) {
  const DTypeInfo& row = decodable(type);
  const int64_t n = int64_t(dst.size());
  if (dtype_bytes(type, n, row.name) != int64_t(src.size()))
    fail("{}: {} bytes do not hold {} elements", row.name, src.size(), n);
  // Decode a bounded chunk of whole blocks at a time so the f32 scratch stays small.
  const int64_t chunk_blocks = std::max<int64_t>(1, 16384 / row.block_elems);
  std::vector<float> scratch(size_t(chunk_blocks * row.block_elems));
  for (int64_t e = 0; e < n; e += int64_t(scratch.size())) {
    const int64_t count = std::min<int64_t>(int64_t(scratch.size()), n - e);
    row.to_f32(src.data() + e / row.block_elems * row.block_bytes, scratch.data(), count);
    for (int64_t i = 0; i < count; ++i) dst[size_t(e + i)] = f32_to_bf16(scratch[size_t(i)]);
  }
}

void quantize_from_f32(DType type, std::span<const float> src, std::span<uint8_t> dst) {
  const DTypeInfo& row = dtype_info(type);
  if (!row.from_f32) fail("writing {} is not supported", row.name);
  const int64_t n = int64_t(src.size());
  if (dtype_bytes(type, n, row.name) != int64_t(dst.size()))
    fail("{}: {} bytes do not hold {} elements", row.name, dst.size(), n);
  if (n > 0) row.from_f32(src.data(), dst.data(), n);
}

}  // namespace ditrun
