// `ditrun bench [--calibrate [--out FILE]]`: measures the numbers of a hardware profile on
// this machine through the backend (launcher/calibration.h) and prints them next to the
// built-in profile they would replace; with --calibrate it also writes the profile JSON, which
// `--devices` accepts in place of a built-in id.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "launcher/backend_options.h"
#ifdef DITRUN_HAVE_CUDA
#include "runtime/cuda/device_query.h"
#endif
#include "launcher/calibration.h"
#include "launcher/commands.h"
#include "runtime/core/atomic_file.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

struct BenchOptions {
  BackendOptions backend;
  CalibrationOptions calibration;
  bool calibrate = false;
  std::string out;  // default: <id>.json
  std::string gguf_type = "q8_0";
  uint64_t stream_mib = 256;
};

// Measuring takes seconds to minutes: an output that cannot be written fails before that.
void check_writable_directory(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) fail("{}: directory '{}' does not exist", path, dir);
  if (::access(dir.c_str(), W_OK) != 0) fail("{}: directory '{}' is not writable", path, dir);
}

void write_profile(const std::string& path, const partition::HardwareProfile& profile) {
  const std::string text = partition::profile_to_json(profile).dump(2) + "\n";
  AtomicFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

void run_bench(BenchOptions& o) {
  const auto gguf = dtype_from_user_name(o.gguf_type);
  if (!gguf) fail("--gguf-type '{}' is not a storage type", o.gguf_type);
  o.calibration.gguf_type = *gguf;
  o.calibration.stream_bytes = o.stream_mib << 20;
  o.calibration.threads = o.backend.threads;
  const std::string out = o.out.empty() ? o.calibration.id + ".json" : o.out;
  if (o.calibrate) check_writable_directory(out);

  const auto backend = make_backend(o.backend);
  // The baseline the measurements are printed against, and whose fields calibration cannot
  // measure are kept: the host's profile, or the GPU's built-in card.
  partition::HardwareProfile baseline_profile = *partition::find_builtin_profile("cpu");
#ifdef DITRUN_HAVE_CUDA
  if (backend->device().kind == DeviceKind::Cuda)
    for (const cuda::GpuInfo& g : cuda::query_gpus().gpus)
      if (g.index == backend->device().index) baseline_profile = partition::profile_for_gpu(g.name, g.total_bytes);
#endif
  const partition::HardwareProfile* baseline = &baseline_profile;
  o.calibration.baseline = *baseline;
  const CalibrationOptions& c = o.calibration;
  fmt::print("measuring on {}, {} activations: GEMM {}x{}x{}, attention {} tokens x {} heads x {}, {} MiB copies, "
             "{} s each\n",
             backend->name(), runtime::precision_name(backend->precision()), c.tokens, c.hidden, c.inner,
             c.attention_tokens, c.attention_heads, c.head_dim, o.stream_mib, c.seconds);
  std::fflush(stdout);
  const partition::HardwareProfile profile = calibrate(*backend, c);
  fmt::print("{}", calibration_table(profile, *baseline));
  if (o.calibrate) {
    write_profile(out, profile);
    fmt::print("wrote {} (profile '{}'; use it with --devices {})\n", out, profile.id, out);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure this machine's GEMM, attention and copy rates (a hardware profile)");
  static BenchOptions o;
  CalibrationOptions& c = o.calibration;
  cmd->add_flag("--calibrate", o.calibrate, "Write the measured hardware profile JSON (to --out)");
  cmd->add_option("--out", o.out, "Profile JSON to write with --calibrate (default: <id>.json)");
  cmd->add_option("--id", c.id, "The profile's id")->capture_default_str();
  cmd->add_option("--seconds", c.seconds, "Time budget of each measurement")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--tokens", c.tokens, "GEMM tokens (M)")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--hidden", c.hidden, "GEMM output features (N)")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--inner", c.inner, "GEMM input features (K)")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--gguf-type", o.gguf_type, "Storage measured for the gguf weight class")->capture_default_str();
  cmd->add_option("--attention-tokens", c.attention_tokens, "Attention tokens (L)")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--heads", c.attention_heads, "Attention heads")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--head-dim", c.head_dim, "Attention head size")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--stream-mib", o.stream_mib, "Buffer of the memory and copy measurements, MiB")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  add_backend_options(*cmd, o.backend);
  cmd->callback([] { run_bench(o); });
}

}  // namespace ditrun::launcher
