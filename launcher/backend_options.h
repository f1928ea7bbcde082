// The options every computing command shares: which backend, in which precision, with how
// many threads.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "runtime/backend/backend.h"

namespace ditrun::launcher {

struct BackendOptions {
  std::string precision = "f32";
  int threads = 0;
  std::string device_memory;  // --device-memory: the CPU backend's budget ("" = none)
  uint64_t device_memory_bytes() const;  // 0 when none
};

void add_backend_options(CLI::App& cmd, BackendOptions& options);
std::unique_ptr<runtime::Backend> make_backend(const BackendOptions& options);

}  // namespace ditrun::launcher
