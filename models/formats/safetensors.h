// safetensors: an 8-byte little-endian header length, a JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data buffer. Offsets are relative to the buffer.
#pragma once

#include <map>
#include <span>
#include <string>
#include <vector>

#include "models/formats/tensor_record.h"

namespace ditrun::formats {

// The reference implementation refuses headers above 100 MB; so do we, before parsing.
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

struct SafetensorsIndex {
  std::vector<TensorRecord> tensors;  // in header order; offsets absolute in the file
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;
};

// Parses and validates a whole safetensors file held in `bytes`. `source` names the file in
// error messages. Checks: header length bound, well-formed JSON (bounded depth), known
// dtypes, non-negative shapes, shape x dtype size == byte span, offsets in bounds and
// non-overlapping, string-valued metadata.
SafetensorsIndex parse_safetensors(std::span<const uint8_t> bytes, const std::string& source);

// One tensor to write: its bytes are supplied later, in order, by the caller.
struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
};

// Streams a safetensors file: the header is written up front from the declared entries, then
// each tensor's bytes in declaration order, so a writer never holds more than one tensor.
// The output appears atomically at `path` on finish().
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::string path, std::vector<SafetensorsEntry> entries,
                    std::map<std::string, std::string> metadata = {});
  ~SafetensorsWriter();
  // Appends the next tensor's bytes; the size must match its dtype and shape.
  void write_next(std::span<const uint8_t> bytes);
  void finish();
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  size_t next_index() const { return next_; }

 private:
  struct Impl;
  std::vector<SafetensorsEntry> entries_;
  std::vector<uint64_t> sizes_;
  size_t next_ = 0;
  Impl* impl_;
};

}  // namespace ditrun::formats
