// ditrun: the command-line entry point. Every failure caused by input (files, tensors,
// options) ends as one line on stderr naming the thing and the problem, with exit code 2.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "launcher/commands.h"
#include "runtime/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"ditrun: a multi-GPU runtime for diffusion-transformer models (Flux, Wan, Qwen-Image, SD3.5)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ditrun 0.1.0");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();

  auto logger = spdlog::stderr_color_mt("ditrun");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  app.parse_complete_callback([&] { spdlog::set_level(spdlog::level::from_str(log_level)); });

  ditrun::launcher::add_inspect_command(app);
  ditrun::launcher::add_dump_command(app);
  ditrun::launcher::add_synth_command(app);
  ditrun::launcher::add_quantize_command(app);
  ditrun::launcher::add_devices_command(app);
  ditrun::launcher::add_forward_command(app);
  ditrun::launcher::add_run_command(app);
  ditrun::launcher::add_plan_command(app);
  ditrun::launcher::add_bench_command(app);
  ditrun::launcher::add_serve_command(app);
  ditrun::launcher::add_decode_command(app);
  ditrun::launcher::add_tokenize_command(app);
  ditrun::launcher::add_encode_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ditrun::Error& e) {
    std::fprintf(stderr, "ditrun: error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "ditrun: error: out of host memory\n");
    return 2;
  }
  return 0;
}
