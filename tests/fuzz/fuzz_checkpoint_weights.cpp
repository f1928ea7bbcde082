// libFuzzer target: a whole checkpoint as the runtime sees it. The input is written to a
// file (Checkpoint maps files, it never parses memory), opened by content, its weights
// resolved (scaled fp8, comfy_quant, block fp8, GGUF blocks, plain), and every weight small
// enough is dequantized. A ditrun::Error is the expected answer to bad input; any other
// exception, a crash, a leak or a sanitizer report is a finding.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "models/formats/checkpoint.h"
#include "models/quant/weight_set.h"
#include "runtime/core/error.h"

namespace {

// Dequantizing is linear in the element count; larger weights only slow the fuzzer down.
constexpr int64_t kMaxDecodeElements = int64_t(1) << 20;

// One file per process, written for every input and removed after it (libFuzzer ends
// with _Exit, so an atexit handler would never run); /dev/shm keeps it off the disk.
const std::string& input_path() {
  static const std::string path = std::string(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") +
                                  "/ditrun-fuzz-checkpoint-" + std::to_string(getpid());
  return path;
}

void write_input(const uint8_t* data, size_t size) {
  const int fd = open(input_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();  // the harness itself is broken, not the code under test
  for (size_t done = 0; done < size;) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) std::abort();
    done += size_t(n);
  }
  close(fd);
}

void decode_weights(const ditrun::quant::WeightSet& set) {
  for (const auto& w : set.weights()) {
    const int64_t n = w.numel();
    if (n < 0 || n > kMaxDecodeElements || !w.unsupported.empty()) continue;
    if (!ditrun::dtype_info(w.storage).to_f32) continue;
    try {
      std::vector<float> f32 = w.dequantize();
      if (f32.size() != size_t(n)) std::abort();
      std::vector<uint16_t> bf16(static_cast<size_t>(n));
      ditrun::dequantize_to_bf16(w.storage, w.bytes, bf16);
    } catch (const ditrun::Error&) {
      // One undecodable weight (e.g. an orig_shape that splits a block) must not hide the rest.
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write_input(data, size);
  try {
    const ditrun::formats::Checkpoint checkpoint(input_path());
    for (const auto& t : checkpoint.tensors())
      if (t.offset > checkpoint.file_bytes() || t.nbytes > checkpoint.file_bytes() - t.offset) std::abort();
    const ditrun::quant::WeightSet weights(checkpoint);
    decode_weights(weights);
  } catch (const ditrun::Error&) {
  }
  unlink(input_path().c_str());
  return 0;
}
