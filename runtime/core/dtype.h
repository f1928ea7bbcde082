// The one table of storage types. Every type a checkpoint can hold is one row: its name,
// block geometry, GGUF id, safetensors name, and its CPU codecs (dequantize to f32 / bf16,
// and a quantizer where ditrun can write the type). Adding a type is adding a row.
//
// The CPU codecs are the definition of each storage type: other backends' kernels are
// tested against them (DESIGN.md: a CPU twin for every kernel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace ditrun {

enum class DType : uint8_t {
  // Plain floating point.
  F32, F16, BF16, F64,
  // 8-bit floats (safetensors F8_*) and the e8m0 scale type.
  F8_E4M3, F8_E5M2, F8_E8M0,
  // Integers and bool (safetensors / GGUF I*).
  I8, I16, I32, I64, U8, U16, U32, U64, BOOL,
  // GGUF block quantizations, in ggml id order.
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
  Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
  IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, IQ1_M,
  TQ1_0, TQ2_0, MXFP4, NVFP4, Q1_0, Q2_0,
  Count
};

enum class DTypeKind : uint8_t { Float, Float8, Integer, Quantized };

// Decodes `n` elements (a whole number of blocks) starting at `src`.
using DequantizeFn = void (*)(const uint8_t* src, float* dst, int64_t n);
// Encodes `n` elements (a whole number of blocks) into `dst`.
using QuantizeFn = void (*)(const float* src, uint8_t* dst, int64_t n);

struct DTypeInfo {
  DType type;
  std::string_view name;               // ggml spelling: "f32", "bf16", "q4_K", "f8_e4m3fn"
  DTypeKind kind;
  int64_t block_elems;                 // elements per block (1 for plain types)
  int64_t block_bytes;                 // bytes per block
  int gguf_id;                         // ggml_type id, or -1 when GGUF cannot hold it
  std::string_view safetensors_name;   // "BF16", "F8_E4M3", or empty when it cannot
  DequantizeFn to_f32;                 // null: ditrun cannot decode this type yet
  QuantizeFn from_f32;                 // null: ditrun cannot write this type from f32
};

const DTypeInfo& dtype_info(DType type);
inline std::string_view dtype_name(DType type) { return dtype_info(type).name; }
std::span<const DTypeInfo> all_dtypes();

// Lookups. GGUF ids that ggml removed (4, 5, 31-33, 36-38) and unknown ids give nullopt;
// `gguf_id_is_removed` tells the two apart for error messages.
std::optional<DType> dtype_from_gguf_id(uint32_t id);
bool gguf_id_is_removed(uint32_t id);
std::optional<DType> dtype_from_safetensors_name(std::string_view name);
// Case-insensitive name as users type it: "q4_k", "Q8_0", "bf16", "fp8", "f8_e4m3fn", "e5m2".
std::optional<DType> dtype_from_user_name(std::string_view name);

// Bytes for `elems` elements; fails (ditrun::Error) if `elems` is not a whole number of
// blocks or the byte count overflows. `what` names the tensor for the message.
int64_t dtype_bytes(DType type, int64_t elems, std::string_view what);

// Whole-buffer codecs with the checks a caller would otherwise repeat: element count a
// multiple of the block, byte span of the right size, codec available.
void dequantize_to_f32(DType type, std::span<const uint8_t> src, std::span<float> dst);
void dequantize_to_bf16(DType type, std::span<const uint8_t> src, std::span<uint16_t> dst);
void quantize_from_f32(DType type, std::span<const float> src, std::span<uint8_t> dst);

}  // namespace ditrun
