// Offload on the CPU backend: one Flux-shaped model rendered with less and less device
// memory, so more and more blocks stream from the pinned pool through the copy stream. For
// each budget it prints the planner's predicted step time next to the measured one, the
// slowdown against the all-resident run (the simplest alternative: buy the memory), and how
// busy the copy stream was against the measured copy bandwidth (the physical limit of
// streaming). Rates come from a calibration at the model's own shape, taken in the same run.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>

#include "launcher/builtin_model.h"
#include "launcher/calibration.h"
#include "launcher/plan_timing.h"
#include "launcher/planning.h"
#include "models/arch/detect.h"
#include "models/pipeline/job_geometry.h"
#include "models/pipeline/model_cost.h"
#include "models/pipeline/network.h"
#include "runtime/core/units.h"
#include "runtime/core/error.h"

using namespace ditrun;

int main(int argc, char** argv) {
  CLI::App app{"ditrun offload benchmark: predicted vs measured step time as blocks stream (CPU backend)"};
  int64_t hidden = 512, heads = 4, depth = 4, single = 8, pixels = 512, prompt = 64;
  std::string weights = "bf16";
  std::vector<double> fractions{1.0, 0.8, 0.6, 0.4, 0.2};
  double seconds = 3;
  app.add_option("--hidden", hidden, "Flux hidden size")->capture_default_str();
  app.add_option("--heads", heads, "Attention heads (hidden / heads = 128)")->capture_default_str();
  app.add_option("--depth", depth, "Double blocks")->capture_default_str();
  app.add_option("--single", single, "Single blocks")->capture_default_str();
  app.add_option("--pixels", pixels, "Image width = height")->capture_default_str();
  app.add_option("--prompt", prompt, "Prompt tokens")->capture_default_str();
  app.add_option("--weights", weights, "Weight encoding")->capture_default_str();
  app.add_option("--fractions", fractions, "Device memory for weights, as fractions of the weights")->delimiter(',');
  app.add_option("--seconds", seconds, "Timing budget per plan")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);  // the weight store's lines would break the table
  try {
    arch::ModelConfig config = arch::preset("flux-tiny", "bench");
    auto& p = std::get<arch::FluxParams>(config.params);
    p.hidden_size = hidden, p.num_heads = heads, p.depth = depth, p.depth_single_blocks = single;
    p.context_in_dim = hidden, p.vec_in_dim = 256;
    p.axes_dim = {16, 56, 56};
    launcher::BuiltinModel files(config, weights, prompt);
    const models::ModelSource source = models::open_model(files.model_path(), std::nullopt);
    const auto network = models::make_network(source.config);
    models::JobSettings settings;
    settings.width = settings.height = pixels;
    settings.text_tokens = prompt;
    const models::JobGeometry job = models::job_geometry(source.config, settings);

    launcher::CalibrationOptions o;
    o.tokens = o.attention_tokens = job.tokens.image + job.tokens.text;
    o.hidden = o.inner = hidden;
    o.attention_heads = heads;
    o.head_dim = hidden / heads;
    o.stream_bytes = 128 << 20;
    o.baseline = *partition::find_builtin_profile("cpu");
    auto calibration_backend = runtime::make_cpu_backend();
    const partition::HardwareProfile profile = launcher::calibrate(*calibration_backend, o);
    calibration_backend.reset();
    const std::string profile_path =
        (std::filesystem::temp_directory_path() / fmt::format("ditrun-offload-{}.json", ::getpid())).string();
    std::ofstream(profile_path) << partition::profile_to_json(profile).dump(2);
    const double copy_rate = profile.throughput.host_to_device_bytes_per_s;
    fmt::print("model: Flux hidden {}, {} double + {} single blocks, {} weights; job {}x{} ({} tokens)\n", hidden, depth,
               single, weights, pixels, pixels, job.tokens.image + job.tokens.text);
    fmt::print("calibrated: {:.0f} GFLOP/s {} GEMM, {:.0f} GFLOP/s attention, copy stream {:.1f} GB/s\n\n",
               profile.throughput.gemm_flops.at(models::weight_class(DType::BF16)) / 1e9, "bf16",
               profile.throughput.attention_flops / 1e9, copy_rate / 1e9);

    launcher::DeviceChoice choice;
    choice.inventory = profile_path;
    choice.cpu_backend = true;
    const auto find = models::checkpoint_weights(*source.weights);
    const partition::Plan resident_plan = launcher::plan_model(source.config, *network, find, job, choice).plan;
    const uint64_t act = resident_plan.ranks[0].activation_bytes, all = resident_plan.ranks[0].resident_bytes();

    fmt::print("{:>8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>7} {:>12} {:>14}\n", "weights", "mode", "resident", "streamed",
               "predicted", "measured", "m/p", "vs resident", "copy busy");
    double resident_seconds = 0;
    for (double f : fractions) {
      choice.cpu_device_memory_bytes = act + uint64_t(double(all) * f);
      partition::Plan plan;
      try {
        plan = launcher::plan_model(source.config, *network, find, job, choice).plan;
      } catch (const Error& e) {
        fmt::print("{:>7.0f}% refused: {}\n", 100 * f, e.what());
        continue;
      }
      const launcher::PlanTiming t = launcher::time_plan(source, *network, plan, {16, pixels / 8, pixels / 8},
                                                         files.cond_path(), {3.5, 1}, {}, seconds);
      if (resident_seconds == 0) resident_seconds = t.measured_step_seconds;
      const double copy_seconds = double(t.streamed_bytes) / copy_rate;
      fmt::print("{:>7.0f}% {:>8} {:>10} {:>10} {:>9.3f}s {:>9.3f}s {:>7.3f} {:>11.3f}x {:>13.1f}%\n", 100 * f,
                 partition::to_string(plan.mode), format_bytes(plan.ranks[0].resident_bytes()),
                 format_bytes(t.streamed_bytes), t.predicted_step_seconds, t.measured_step_seconds, t.ratio(),
                 t.measured_step_seconds / resident_seconds, 100 * copy_seconds / t.measured_step_seconds);
    }
    std::filesystem::remove(profile_path);
    fmt::print("\nm/p: measured / predicted step time. vs resident: slowdown against the first row. copy busy: the\n"
               "streamed bytes at the calibrated copy rate, as a share of the step (above 100% the copies cannot hide).\n");
  } catch (const std::exception& e) {
    fmt::print(stderr, "offload bench: {}\n", e.what());
    return 2;
  }
  return 0;
}
