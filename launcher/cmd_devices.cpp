// `ditrun devices`: the GPUs this build can use and the host's cores and memory.
#include <fmt/format.h>
#include <unistd.h>

#include "launcher/commands.h"
#include "runtime/core/progress.h"
#include "runtime/core/units.h"
#include "runtime/core/parallel.h"
#ifdef DITRUN_HAVE_CUDA
#include "runtime/cuda/device_query.h"
#endif

namespace ditrun::launcher {

void add_devices_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("devices", "List the GPUs and host resources ditrun can use");
  cmd->callback([] {
    const double host_bytes = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
    fmt::print("host          {} cores, {} memory\n", host_threads(), format_bytes(host_bytes));
#ifdef DITRUN_HAVE_CUDA
    const cuda::GpuInventory inv = cuda::query_gpus();
    fmt::print("cuda runtime  {}.{}\n", inv.runtime_version / 1000, (inv.runtime_version % 1000) / 10);
    if (inv.gpus.empty()) fmt::print("gpus          none ({})\n", inv.unavailable_reason.empty() ? "no device" : inv.unavailable_reason);
    for (const auto& g : inv.gpus)
      fmt::print("cuda:{}        {} (sm_{}{}, {} SMs), {} total, {} free\n", g.index, g.name, g.cc_major, g.cc_minor,
                 g.sm_count, format_bytes(uint64_t(g.total_bytes)), format_bytes(uint64_t(g.free_bytes)));
#else
    fmt::print("gpus          none (this build has no CUDA backend)\n");
#endif
  });
}

}  // namespace ditrun::launcher
