#include "launcher/backend_options.h"

#include <spdlog/spdlog.h>

#include "runtime/core/units.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#ifdef DITRUN_HAVE_CUDA
#include "runtime/cuda/cuda_backend.h"
#endif

namespace ditrun::launcher {

void add_backend_options(CLI::App& cmd, BackendOptions& options) {
  cmd.add_option("--backend", options.backend, "cpu, cuda, or auto (cuda when a GPU is visible)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd.add_option("--precision", options.precision,
                 "Activation arithmetic: f32, bf16 (values rounded to bfloat16 after every op, f32 accumulation), or "
                 "auto (f32 on the CPU, bf16 on a GPU)")
      ->check(CLI::IsMember({"auto", "f32", "bf16"}))
      ->capture_default_str();
  cmd.add_option("--threads", options.threads, "CPU threads (0: every core)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--device-memory", options.device_memory,
                 "Device memory budget (activations + weights, e.g. 2gb): the CPU backend's budget, or the CUDA "
                 "backend's arena; a plan made for it streams what does not fit");
  cmd.add_option("--cuda-device", options.cuda_device,
                 "The GPU to use (default 0; under mpirun each rank takes its local rank's GPU)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--fp8-gemm", options.fp8_gemm,
                 "on: fp8 weights multiply in fp8 with activations quantized on the fly (Ada/Hopper); off: they are "
                 "decoded to bf16 first (exact weights, slower)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  cmd.add_option("--attention", options.attention,
                 "CUDA attention: auto (cuDNN's fused kernel where it applies, else ditrun's), cudnn, or flash "
                 "(ditrun's own kernel)")
      ->check(CLI::IsMember({"auto", "cudnn", "flash"}))
      ->capture_default_str();
}

uint64_t BackendOptions::device_memory_bytes() const {
  return device_memory.empty() ? 0 : parse_bytes(device_memory, "--device-memory");
}

int visible_gpus() {
#ifdef DITRUN_HAVE_CUDA
  return runtime::cuda_device_count();
#else
  return 0;
#endif
}

std::optional<std::string> cuda_unavailable() {
#ifdef DITRUN_HAVE_CUDA
  return runtime::cuda_unavailable_reason(0);
#else
  return std::string("this build has no CUDA backend (built without nvcc, or with DITRUN_CUDA=OFF)");
#endif
}

int gpu_for_local_rank(int local_rank) {
  const int gpus = visible_gpus();
  return gpus > 0 ? local_rank % gpus : 0;
}

BackendKind BackendOptions::kind() const {
  if (backend == "cpu") return BackendKind::cpu;
#ifdef DITRUN_HAVE_CUDA
  if (backend == "auto") return runtime::cuda_device_count() > 0 ? BackendKind::cuda : BackendKind::cpu;
  if (const auto why = runtime::cuda_unavailable_reason(std::max(cuda_device, 0)))
    fail("--backend cuda: {}", *why);
  return BackendKind::cuda;
#else
  if (backend == "cuda") fail("--backend cuda: this build has no CUDA backend (built without nvcc, or with DITRUN_CUDA=OFF)");
  return BackendKind::cpu;
#endif
}

runtime::Precision BackendOptions::resolved_precision() const {
  if (precision == "f32") return runtime::Precision::F32;
  if (precision == "bf16") return runtime::Precision::BF16;
  return kind() == BackendKind::cuda ? runtime::Precision::BF16 : runtime::Precision::F32;
}

std::unique_ptr<runtime::Backend> make_backend(const BackendOptions& options) {
  const uint64_t budget = options.device_memory_bytes();
  std::unique_ptr<runtime::Backend> backend;
  if (options.kind() == BackendKind::cuda) {
#ifdef DITRUN_HAVE_CUDA
    runtime::CudaBackendOptions cuda;
    cuda.precision = options.resolved_precision();
    cuda.device = std::max(options.cuda_device, 0);
    cuda.arena_bytes = budget;
    cuda.fp8_gemm = options.fp8_gemm == "on";
    cuda.attention = options.attention;
    backend = runtime::make_cuda_backend(cuda);
#endif
  } else {
    runtime::CpuBackendOptions cpu;
    cpu.precision = options.resolved_precision();
    cpu.threads = options.threads;
    cpu.device_memory_bytes = budget;
    backend = runtime::make_cpu_backend(cpu);
  }
  spdlog::info("backend: {}, {} activations{}", backend->name(), runtime::precision_name(backend->precision()),
               budget ? ", device memory " + format_bytes(budget) : "");
  return backend;
}

}  // namespace ditrun::launcher
