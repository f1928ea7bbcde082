// libFuzzer target: the safetensors parser on arbitrary bytes. A ditrun::Error is the
// expected answer to bad input; any other exception, a crash, a leak or a sanitizer report
// is a finding. When the parser accepts an input, the index it returns must be safe to use.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "models/formats/safetensors.h"
#include "runtime/core/error.h"

namespace {

// What every caller relies on: each tensor lies inside the data section, holds exactly the
// bytes its dtype and shape need, and no two tensors share a byte.
void check_index(const ditrun::formats::SafetensorsIndex& index, size_t size) {
  if (index.data_start > size) std::abort();
  std::vector<const ditrun::formats::TensorRecord*> sorted;
  for (const auto& t : index.tensors) {
    if (t.offset < index.data_start || t.offset > size || t.nbytes > size - t.offset) std::abort();
    const int64_t elems = ditrun::formats::element_count(t.shape);
    if (elems < 0 || uint64_t(ditrun::dtype_bytes(t.dtype, elems, t.name)) != t.nbytes) std::abort();
    if (t.nbytes > 0) sorted.push_back(&t);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i - 1]->offset + sorted[i - 1]->nbytes > sorted[i]->offset) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto index = ditrun::formats::parse_safetensors(std::span<const uint8_t>(data, size), "fuzz.safetensors");
    check_index(index, size);
  } catch (const ditrun::Error&) {
  }
  return 0;
}
