// The options every computing command shares (run, serve, forward, bench): which backend
// (--backend cpu|cuda|auto), in which precision, with how many threads or on which GPU, and
// the device-memory budget.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "runtime/backend/backend.h"

namespace ditrun::launcher {

enum class BackendKind { cpu, cuda };

struct BackendOptions {
  std::string backend = "auto";     // cpu | cuda | auto (cuda when this build has it and a GPU is visible)
  std::string precision = "auto";   // f32 | bf16 | auto (f32 on the CPU, bf16 on a GPU)
  int threads = 0;
  std::string device_memory;        // --device-memory: the CPU backend's budget, the CUDA arena ("" = none)
  int cuda_device = -1;             // the GPU (-1: device 0, or the local rank's under mpirun)
  std::string fp8_gemm = "on";      // on | off: fp8 weights through fp8 GEMMs
  std::string attention = "auto";   // auto | cudnn | flash (CUDA)

  uint64_t device_memory_bytes() const;  // 0 when none
  BackendKind kind() const;              // --backend resolved; fails when cuda is asked for and absent
  runtime::Precision resolved_precision() const;
};

void add_backend_options(CLI::App& cmd, BackendOptions& options);
std::unique_ptr<runtime::Backend> make_backend(const BackendOptions& options);

// GPUs this process sees (0 in a build without CUDA, or without a driver).
int visible_gpus();
// Why this process cannot compute on CUDA (no CUDA in the build, no driver, no device), or nothing.
std::optional<std::string> cuda_unavailable();
// The GPU a rank uses: its local rank modulo the GPUs its node has.
int gpu_for_local_rank(int local_rank);

}  // namespace ditrun::launcher
