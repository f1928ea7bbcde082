// Calibration: measuring on this machine the numbers of a partition::HardwareProfile, through
// the Backend's public ops, so the planner's predictions use what the backend really
// achieves here instead of spec-sheet estimates (`ditrun bench --calibrate`).
//
//   gemm_flops      Backend::linear at one representative shape, tokens x hidden x inner
//                   (2·M·N·K FLOPs), once per weight class with weights encoded in that
//                   class: "bf16" (bf16 weights), "fp8" (float8 e4m3), "gguf" (q8_0 unless told)
//   attention       Backend::attention, L tokens, heads x head_dim (4·L²·heads·head_dim FLOPs)
//   elementwise     a block's mix of norms, RoPE, GELU and residuals at tokens x hidden
//                   (activation bytes read + written, counted as Block::elementwise_elements does)
//   memory          CPU backend: a streaming read of a buffer far larger than the caches, on
//                   every thread (the roofline divides weight bytes, which are read, by it);
//                   other backends: Backend::copy of a large activation (read + write bytes)
//   host->device    Backend::copy_to_device from pinned memory on a copy stream, as a
//                   WeightStore streams blocks
//   device->device  CPU backend: a memcpy between two device buffers (peers on one host meet
//                   in host memory); other backends: the baseline's number (no peer copy op yet)
// Each number is the median of timed samples after a warm-up (launcher/median_timer.h).
#pragma once

#include <cstdint>
#include <string>

#include "partition/hardware_profile.h"
#include "runtime/backend/backend.h"
#include "runtime/core/dtype.h"

namespace ditrun::launcher {

struct CalibrationOptions {
  // The representative GEMM: activations [tokens, inner] times weights [hidden, inner]ᵀ.
  // Defaults: a Flux linear (3072 wide) at 1024 tokens; a test calibrates at its own
  // model's shape, so the rates it predicts with are the rates of that shape.
  int64_t tokens = 1024;  // M
  int64_t hidden = 3072;  // N, output features
  int64_t inner = 3072;   // K, input features
  DType gguf_type = DType::Q8_0;  // the storage measured for the "gguf" class
  int64_t attention_tokens = 1024;
  int64_t attention_heads = 24;
  int64_t head_dim = 128;
  uint64_t stream_bytes = uint64_t{256} << 20;  // buffer of the memory and copy measurements
  double seconds = 0.5;  // time budget of each measurement
  int threads = 0;       // threads of the host memory read (use the backend's); 0: every core
  std::string id = "cpu-calibrated";
  // The profile this calibration replaces (for the CPU backend the built-in "cpu"): fields a
  // calibration cannot measure (a GPU's memory size, compute capability, host RAM per device,
  // a peer link) are taken from it.
  partition::HardwareProfile baseline;
};

// Checks the options (positive sizes, inner a multiple of the GGUF type's block), measures,
// and returns the profile: kind from the backend's device,
// model = "<CPU model> (<threads> threads)" and memory = MemTotal on the CPU backend, source
// = "ditrun bench --calibrate on <date>, <backend>, <precision>, GEMM MxNxK".
partition::HardwareProfile calibrate(runtime::Backend& backend, const CalibrationOptions& options);

// A table of every measured rate next to the baseline's and their ratio (measured / baseline).
std::string calibration_table(const partition::HardwareProfile& measured, const partition::HardwareProfile& baseline);

}  // namespace ditrun::launcher
