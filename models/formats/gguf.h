// GGUF v2/v3 (little-endian): header, typed key/value metadata, tensor infos, aligned data.
// The reader makes every check ggml's loader makes (magic, version, counts, value types,
// nested arrays, alignment, dims, type ids including removed ones, ne0 divisible by the
// block size, bounds, duplicate keys and names) but, like ComfyUI-GGUF, accepts what real
// diffusion GGUFs contain: 5-D tensors, names longer than 63 characters, and tensors that
// are not packed in info order (only alignment, bounds and non-overlap are required).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "models/formats/tensor_record.h"

namespace ditrun::formats {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view gguf_type_name(GgufType type);

struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType elem_type = GgufType::U8;  // arrays only
  // Unsigned ints widen to uint64_t, signed to int64_t, floats to double.
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> value;

  static GgufValue string(std::string s) { return {GgufType::STRING, GgufType::U8, std::move(s)}; }
  static GgufValue u32(uint32_t v) { return {GgufType::U32, GgufType::U8, uint64_t(v)}; }
  static GgufValue i32_array(const std::vector<int64_t>& v);
  static GgufValue f32_array(const std::vector<float>& v);
  static GgufValue u8_array(std::string_view bytes);
  static GgufValue string_array(const std::vector<std::string>& v);

  std::optional<int64_t> as_int() const;
  std::optional<std::string> as_string() const;
  std::string to_display(size_t max_array_items = 8) const;
};

inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr uint64_t kGgufMaxStringLength = uint64_t(1) << 30;
inline constexpr uint64_t kGgufMaxArrayElements = uint64_t(1) << 30;
// All metadata arrays together: each element is held as a GgufValue (~48 bytes), so a file
// of forged 1-byte elements could otherwise cost ~48x its size in memory. Tokenizer arrays
// of the largest LLM vocabularies stay well under this; diffusion files have none.
inline constexpr uint64_t kGgufMaxTotalArrayElements = uint64_t(1) << 22;
inline constexpr uint32_t kGgufMaxDims = 8;  // ggml: 4; Wan/HunyuanVideo files carry 5-D tensors

struct GgufIndex {
  uint32_t version = 3;
  uint32_t alignment = kGgufDefaultAlignment;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
  std::vector<TensorRecord> tensors;                        // shapes in PyTorch order
  uint64_t data_start = 0;

  const GgufValue* find(std::string_view key) const;
};

GgufIndex parse_gguf(std::span<const uint8_t> bytes, const std::string& source);

struct GgufEntry {
  std::string name;
  DType dtype;
  Shape shape;  // PyTorch order; written reversed as ggml ne[]
};

// Streams a GGUF v3 file like gguf-py does: header, metadata and infos first, then each
// tensor's bytes in declaration order, each padded to the alignment. Atomic on finish().
class GgufWriter {
 public:
  GgufWriter(std::string path, std::vector<std::pair<std::string, GgufValue>> metadata, std::vector<GgufEntry> entries,
             uint32_t alignment = kGgufDefaultAlignment);
  ~GgufWriter();
  void write_next(std::span<const uint8_t> bytes);
  void finish();
  const std::vector<GgufEntry>& entries() const { return entries_; }

 private:
  struct Impl;
  std::vector<GgufEntry> entries_;
  std::vector<uint64_t> sizes_;
  uint32_t alignment_;
  size_t next_ = 0;
  Impl* impl_;
};

}  // namespace ditrun::formats
