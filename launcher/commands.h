// The ditrun subcommands. Each add_* registers its options and callback on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace ditrun::launcher {

void add_inspect_command(CLI::App& app);
void add_dump_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_devices_command(CLI::App& app);
void add_forward_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_decode_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_encode_command(CLI::App& app);

// --low-noise FILE (run, serve, plan): the model given is then the high-noise expert of two.
inline constexpr const char* kLowNoiseHelp =
    "The low-noise expert of a model of two (Wan 2.2 A14B; MODEL is then the high-noise one). A --config with Wan's "
    "`experts` section names it too";

}  // namespace ditrun::launcher
