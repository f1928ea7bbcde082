// libFuzzer target: tensor message decoding on arbitrary bytes (what a rank receives from a
// peer it should not have to trust). A ditrun::Error is the expected answer to bad input;
// any other exception, a crash, a leak or a sanitizer report is a finding. An accepted input
// must give consistent tensors and re-encode to bytes that decode to the same encoding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "runtime/core/error.h"
#include "transport/tensor_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ditrun::transport;
  try {
    const TensorMessage message = decode_tensor_message(std::span<const uint8_t>(data, size), "fuzz input");
    for (const auto& [name, t] : message.tensors) {
      if (name.empty() || t.shape.size() > kTensorMessageMaxDims) std::abort();
      if (ditrun::shape_numel(t.shape) != t.numel()) std::abort();
    }
    // The header may be re-written differently (JSON spacing, number spelling), but once
    // written by ditrun it must be stable.
    const auto once = encode_tensor_message(message);
    const auto twice = encode_tensor_message(decode_tensor_message(once, "re-encoded fuzz input"));
    if (once != twice) std::abort();
  } catch (const ditrun::Error&) {
  }
  return 0;
}
