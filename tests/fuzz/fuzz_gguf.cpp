// libFuzzer target: the GGUF parser on arbitrary bytes. A ditrun::Error is the expected
// answer to bad input; any other exception, a crash, a leak or a sanitizer report is a
// finding. When the parser accepts an input, the index it returns must be safe to use.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "models/formats/gguf.h"
#include "runtime/core/error.h"

namespace {

// What every caller relies on: each tensor lies inside the file, aligned, and holds exactly
// the bytes its type and shape need.
void check_index(const ditrun::formats::GgufIndex& index, size_t size) {
  if (index.alignment == 0 || (index.alignment & (index.alignment - 1)) != 0) std::abort();
  if (index.data_start > size) std::abort();
  for (const auto& t : index.tensors) {
    if (t.offset < index.data_start || t.offset > size || t.nbytes > size - t.offset) std::abort();
    if ((t.offset - index.data_start) % index.alignment != 0) std::abort();
    const int64_t elems = ditrun::formats::element_count(t.shape);
    if (elems < 0 || uint64_t(ditrun::dtype_bytes(t.dtype, elems, t.name)) != t.nbytes) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto index = ditrun::formats::parse_gguf(std::span<const uint8_t>(data, size), "fuzz.gguf");
    check_index(index, size);
    // Metadata is printed by `ditrun inspect`; its accessors must cope with any value.
    for (const auto& [key, value] : index.metadata) {
      (void)value.to_display();
      (void)value.as_int();
      (void)value.as_string();
    }
  } catch (const ditrun::Error&) {
  }
  return 0;
}
