#include "launcher/backend_options.h"

#include <spdlog/spdlog.h>

#include "partition/units.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {

void add_backend_options(CLI::App& cmd, BackendOptions& options) {
  cmd.add_option("--precision", options.precision,
                 "Activation arithmetic: f32, or bf16 (values rounded to bfloat16 after every op, f32 accumulation)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  cmd.add_option("--threads", options.threads, "CPU threads (0: every core)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--device-memory", options.device_memory,
                 "Device memory budget of the CPU backend (activations + weights, e.g. 2gb): a plan made for it "
                 "streams what does not fit, as on a GPU of that size");
}

uint64_t BackendOptions::device_memory_bytes() const {
  return device_memory.empty() ? 0 : partition::parse_bytes(device_memory, "--device-memory");
}

std::unique_ptr<runtime::Backend> make_backend(const BackendOptions& options) {
  runtime::CpuBackendOptions cpu;
  cpu.precision = options.precision == "bf16" ? runtime::Precision::BF16 : runtime::Precision::F32;
  cpu.threads = options.threads;
  cpu.device_memory_bytes = options.device_memory_bytes();
  auto backend = runtime::make_cpu_backend(cpu);
  spdlog::info("backend: {}, {} activations{}", backend->name(), runtime::precision_name(backend->precision()),
               cpu.device_memory_bytes ? ", device memory " + partition::format_bytes(cpu.device_memory_bytes) : "");
  return backend;
}

}  // namespace ditrun::launcher
