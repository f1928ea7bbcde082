// Sequence parallelism on CPU ranks: one Wan-shaped model call over a long video sequence on
// 1 rank and on N ranks sharing its tokens (ranks as threads on local channels, one core each,
// so every rank has the cores the one-rank run has), against the physical limit (N times
// faster) and the simplest alternative (the one-rank call). Per layout: seconds per call,
// speedup, the share of the call spent in the exchanges, the device-memory peak per rank
// (the backend's ledger: weights, which every rank holds whole, apart from activations), and
// the largest difference from the one-rank output; and the planner's prediction of both
// calls (partition/cost_model.h, rates calibrated here at the model's shape, 1 thread).
//
//   ditrun_bench_sp [--ranks 2] [--frames 9] [--width 512] [--height 512] [--dim 512] [--heads 8]
//                   [--layers 4] [--repeats 2]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <filesystem>
#include <thread>
#include <unistd.h>

#include "launcher/calibration.h"
#include "models/arch/detect.h"
#include "models/pipeline/job_geometry.h"
#include "models/pipeline/model_cost.h"
#include "models/pipeline/model_source.h"
#include "models/pipeline/network.h"
#include "models/synth/synthetic_model.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/exec/stage.h"
#include "runtime/sampling/noise.h"
#include "transport/local_channel.h"
#include "transport/rank_group.h"

using namespace ditrun;
using Clock = std::chrono::steady_clock;

namespace {

struct RankResult {
  double seconds = 0;           // median of the timed calls
  double exchange_seconds = 0;  // per call
  uint64_t exchanged_bytes = 0; // per call, sent by this rank
  uint64_t peak_bytes = 0, weight_bytes = 0;
  HostTensor output;            // rank 0
};

// One call per repeat on `ranks` threads sharing the tokens; results per rank.
std::vector<RankResult> shared_calls(const std::string& model_path, const runtime::HostTensors& inputs, int ranks,
                                     int repeats, int ring) {
  auto channels = transport::make_local_channels(ranks);
  std::vector<RankResult> results(static_cast<size_t>(ranks));
  std::vector<std::string> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      try {
        const models::ModelSource source = models::open_model(model_path, std::nullopt);
        const auto network = models::make_network(source.config);
        auto backend = runtime::make_cpu_backend({runtime::Precision::F32, 1});
        runtime::WeightStore weights(*backend, *network, [&](const std::string& n) { return source.weights->find(n); });
        std::vector<int> members(static_cast<size_t>(ranks));
        for (int i = 0; i < ranks; ++i) members[size_t(i)] = i;
        transport::RankGroup group(*channels[size_t(r)], members, 31);
        runtime::SequenceParallel sequence(group, ring);
        runtime::JobSplit split;
        if (ranks > 1) split.sequence = &sequence;
        const runtime::UnitRange all{0, network->blocks().size() + 2};
        std::vector<double> seconds;
        for (int i = 0; i <= repeats; ++i) {  // the first call warms up
          backend->reset_peak_memory();
          const auto start = Clock::now();
          runtime::StageOutput out = runtime::run_stage(*backend, *network, weights, all, &inputs, {}, {}, split);
          if (i > 0) seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
          if (r == 0 && out.output) results[0].output = std::move(*out.output);
        }
        std::sort(seconds.begin(), seconds.end());
        RankResult& res = results[size_t(r)];
        res.seconds = seconds[seconds.size() / 2];
        res.exchange_seconds = sequence.exchange_seconds() / (repeats + 1);
        res.exchanged_bytes = sequence.exchanged_bytes() / uint64_t(repeats + 1);
        res.peak_bytes = backend->memory_stats().peak_bytes;
        res.weight_bytes = weights.resident_bytes();
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < ranks; ++r)
    if (!errors[size_t(r)].empty()) throw std::runtime_error(fmt::format("rank {}: {}", r, errors[size_t(r)]));
  return results;
}

double max_abs_diff(const HostTensor& a, const HostTensor& b) {
  double d = 0;
  for (size_t i = 0; i < a.data.size(); ++i) d = std::max(d, double(std::abs(a.data[i] - b.data[i])));
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Sequence parallelism on CPU ranks against one rank");
  int ranks = 2, repeats = 2, ring = 0;
  int64_t frames = 9, width = 512, height = 512, dim = 512, heads = 8, layers = 4;
  app.add_option("--ranks", ranks, "Ranks sharing the tokens")->capture_default_str();
  app.add_option("--frames", frames, "Video frames (latent frames 1 + (frames - 1) / 4)")->capture_default_str();
  app.add_option("--width", width)->capture_default_str();
  app.add_option("--height", height)->capture_default_str();
  app.add_option("--dim", dim, "Model width")->capture_default_str();
  app.add_option("--heads", heads)->capture_default_str();
  app.add_option("--layers", layers)->capture_default_str();
  app.add_option("--repeats", repeats, "Timed calls per layout (median)")->capture_default_str();
  app.add_option("--ring", ring, "Ring attention degree among the ranks (0: Ulysses as far as the heads allow)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (ranks < 1 || ring < 0 || (ring > 0 && ranks % ring != 0)) throw std::runtime_error("--ring must divide --ranks");
    const int effective_ring = ring > 0 ? ring : ranks / int(std::gcd(int64_t(ranks), heads));
    arch::ModelConfig config = arch::preset("wan2.1-t2v-1.3b", "bench");
    auto& p = std::get<arch::WanParams>(config.params);
    p.dim = dim;
    p.num_heads = heads;
    p.num_layers = layers;
    p.ffn_dim = 3 * dim;
    p.text_dim = 256;
    p.text_len = 64;
    const std::string dir = (std::filesystem::temp_directory_path() / fmt::format("ditrun-bench-sp-{}", ::getpid())).string();
    std::filesystem::create_directories(dir);
    synth::SynthRequest request;
    request.config = config;
    request.target = quant::ConversionTarget::parse("bf16");
    request.out_path = dir + "/wan.safetensors";
    synth::write_synthetic_model(request);

    const int64_t F = 1 + (frames - 1) / 4, H = height / 8, W = width / 8, tokens = F * (H / 2) * (W / 2);
    runtime::HostTensors inputs;
    inputs["x"] = runtime::seeded_noise(1, {1, p.in_dim, F, H, W});
    inputs["t"] = HostTensor({1}, {500.0f});
    inputs["context"] = runtime::seeded_noise(2, {1, p.text_len, p.text_dim});
    fmt::print("Wan-shaped: dim {}, {} heads, {} layers, {}x{}x{} frames = {} video tokens, bf16 weights, f32 "
               "activations, 1 core per rank; {} ranks: Ulysses {} x ring {}\n",
               dim, heads, layers, width, height, frames, tokens, ranks, ranks / effective_ring, effective_ring);

    // The planner's view: this machine calibrated at the model's shape on one core, the call
    // priced whole and shared over the ranks.
    double predicted_one = 0, predicted_shared = 0;
    {
      const models::ModelSource source = models::open_model(request.out_path, std::nullopt);
      const auto network = models::make_network(source.config);
      models::JobSettings settings;
      settings.width = width;
      settings.height = height;
      settings.frames = frames;
      settings.cfg = 1;
      const models::JobGeometry job = models::job_geometry(source.config, settings);
      const partition::ModelCost cost =
          models::model_cost(source.config, *network, models::checkpoint_weights(*source.weights), job, sizeof(float));
      launcher::CalibrationOptions o;
      o.tokens = tokens;
      o.hidden = o.inner = dim;
      o.attention_tokens = tokens;
      o.attention_heads = heads;
      o.head_dim = dim / heads;
      o.stream_bytes = 64 << 20;
      o.seconds = 0.3;
      o.threads = 1;
      o.baseline = *partition::find_builtin_profile("cpu");
      auto backend = runtime::make_cpu_backend({runtime::Precision::F32, 1});
      const partition::Throughput rates = launcher::calibrate(*backend, o).throughput;
      for (size_t i = 0; i < cost.blocks.size(); ++i) {
        const partition::BlockCost& b = cost.blocks[i];
        const bool whole = i == 0 || i + 1 == cost.blocks.size();
        predicted_one += partition::compute_seconds(b, rates, "cpu");
        predicted_shared += whole ? partition::compute_seconds(b, rates, "cpu")
                                  : partition::shared_compute_seconds(b, rates, "cpu", {ranks, 1, effective_ring});
      }
      if (rates.memory_bytes_per_s > 0)  // the state's split and gather (as share_steps prices them)
        predicted_shared += 4.0 * double(cost.blocks.front().activation_bytes) / rates.memory_bytes_per_s;
    }
    const std::vector<RankResult> one = shared_calls(request.out_path, inputs, 1, repeats, 0);
    const std::vector<RankResult> shared = shared_calls(request.out_path, inputs, ranks, repeats, ring);
    std::filesystem::remove_all(dir);

    const auto mib = [](uint64_t b) { return double(b) / (1 << 20); };
    fmt::print("{:>6} {:>10} {:>9} {:>12} {:>10} {:>14} {:>14} {:>10}\n", "ranks", "s/call", "speedup", "of limit",
               "exchange", "peak/rank MiB", "activations", "max diff");
    const RankResult& base = one[0];
    const uint64_t base_act = base.peak_bytes - base.weight_bytes;
    fmt::print("{:>6} {:>10.3f} {:>9} {:>12} {:>10} {:>14.1f} {:>14.1f} {:>10}\n", 1, base.seconds, "1.00x", "-", "-",
               mib(base.peak_bytes), mib(base_act), "-");
    double slowest = 0, exchange = 0;
    uint64_t peak = 0, weights = 0, sent = 0;
    for (const RankResult& r : shared) {
      slowest = std::max(slowest, r.seconds);
      exchange = std::max(exchange, r.exchange_seconds);
      peak = std::max(peak, r.peak_bytes);
      weights = std::max(weights, r.weight_bytes);
      sent = std::max(sent, r.exchanged_bytes);
    }
    const double speedup = base.seconds / slowest;
    fmt::print("{:>6} {:>10.3f} {:>8.2f}x {:>11.0f}% {:>9.1f}% {:>14.1f} {:>14.1f} {:>10.2e}\n", ranks, slowest, speedup,
               100 * speedup / ranks, 100 * exchange / slowest, mib(peak), mib(peak - weights),
               max_abs_diff(shared[0].output, base.output));
    fmt::print("activations per rank: {:.2f}x the one-rank peak; exchanges sent {:.1f} MiB per rank per call\n",
               double(peak - weights) / double(base_act), mib(sent));
    fmt::print("planner: 1 rank predicted {:.3f} s (measured/predicted {:.2f}), {} ranks predicted {:.3f} s "
               "(measured/predicted {:.2f}), predicted speedup {:.2f}x\n",
               predicted_one, base.seconds / predicted_one, ranks, predicted_shared, slowest / predicted_shared,
               predicted_one / predicted_shared);
  } catch (const std::exception& e) {
    fmt::print(stderr, "ditrun_bench_sp: {}\n", e.what());
    return 2;
  }
  return 0;
}
