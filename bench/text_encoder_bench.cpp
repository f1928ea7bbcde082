// Text encoders on the CPU backend: full-size T5-XXL files (`ditrun synth --arch t5 --preset
// full --weights bf16|fp8|q8_0`) encoding a few prompts the way Flux-dev does (512 tokens,
// padded, no mask): seconds per prompt, tokens per second, achieved GFLOP/s against the
// machine's OpenBLAS sgemm (the physical limit of this backend), and the same prompt at its
// own length (Wan's way, the simplest alternative to padding) in the same run. Then the prompt
// cache: a 100-job file over 10 distinct prompts through a small encoder with the cache and
// without it (every job encoding its prompt, the simplest alternative), and the time it saves
// extrapolated to T5-XXL from the per-prompt latency measured above.
//
//   ditrun_bench_text [--prompts 3] [--small-jobs 100] T5_FILE...
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>

#include "bench/sgemm_limit.h"
#include "launcher/prompt_cache.h"
#include "models/arch/detect.h"
#include "models/text/prompt_conditioner.h"
#include "models/text/text_encoder_synth.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/parallel.h"

using namespace ditrun;
using namespace ditrun::models::text;
using bench::Clock;
using bench::seconds_since;

namespace {

// GEMM + attention FLOPs of one encoding of `l` tokens.
double t5_flops(const T5Params& p, int64_t l) {
  const double per_layer = 2.0 * double(l) * (4.0 * double(p.dim * p.dim_attn) + 3.0 * double(p.dim * p.dim_ffn)) +
                           4.0 * double(l * l) * double(p.dim_attn);
  return per_layer * double(p.num_layers);
}

HostTensor ids_tensor(const std::vector<int64_t>& ids) {
  HostTensor t(Shape{1, int64_t(ids.size())});
  for (size_t i = 0; i < ids.size(); ++i) t.data[i] = float(ids[i]);
  return t;
}

const std::vector<std::string> kPrompts = {
    "a red fox standing in fresh snow at dawn, soft light, detailed fur",
    "an astronaut riding a horse on the moon, photorealistic, 35mm",
    "a bowl of ramen on a wooden table, steam rising, shallow depth of field",
    "a lighthouse on a cliff during a storm, waves crashing, dramatic sky",
    "a watercolor painting of a quiet canal in Venice at sunset"};

// Seconds per Flux-style prompt (the mean over `prompts`), printed with its rates.
double bench_t5(const std::string& path, int prompts, double sgemm_gflops) {
  const TextEncoderSource src = open_text_encoder(path, std::nullopt, TokenizerSearch{});
  auto backend = runtime::make_cpu_backend({});
  T5Encoder encoder(src.config.t5, *backend, *src.weights, path);
  const Tokenizer& tok = *src.tokenizer;
  fmt::print("\n{}\n", src.describe());
  encoder.encode(ids_tensor(tok.fit(tok.encode("warm up"), 8)), {});  // the weights' first touch
  double padded = 0, own = 0;
  int64_t own_tokens = 0;
  for (int i = 0; i < prompts; ++i) {
    const std::vector<int64_t> ids = tok.encode(kPrompts[size_t(i) % kPrompts.size()]);
    auto t = Clock::now();
    encoder.encode(ids_tensor(tok.fit(ids, 512)), {});
    padded += seconds_since(t);
    t = Clock::now();
    encoder.encode(ids_tensor(ids), {});
    own += seconds_since(t);
    own_tokens += int64_t(ids.size());
  }
  padded /= prompts;
  own /= prompts;
  const double gflops = t5_flops(src.config.t5, 512) / padded / 1e9;
  fmt::print("  Flux (512 tokens, padded): {:>7.2f} s per prompt, {:>6.1f} tokens/s, {:>6.1f} GFLOP/s = {:>5.1f}% of sgemm\n",
             padded, 512 / padded, gflops, 100 * gflops / sgemm_gflops);
  const double mean_tokens = double(own_tokens) / prompts;
  fmt::print("  own length ({:.0f} tokens):   {:>7.2f} s per prompt, {:>6.1f} tokens/s; padding costs {:.1f}x\n",
             mean_tokens, own, mean_tokens / own, padded / own);
  std::fflush(stdout);  // each file's lines as they come: a full run takes minutes
  return padded;
}

// 100 jobs over 10 prompts through a small encoder: with the prompt cache and without.
void bench_cache(int jobs, const std::vector<double>& xxl_seconds) {
  const std::string dir = (std::filesystem::temp_directory_path() / "ditrun-bench-text").string();
  std::filesystem::create_directories(dir);
  TextEncoderConfig small = text_encoder_preset("umt5-builtin");  // Wan's conditioning: the prompt's own length
  small.t5.dim = small.t5.dim_attn = 512;
  small.t5.dim_ffn = 1024;
  small.t5.num_heads = 8;
  small.t5.num_layers = 4;
  const std::string path = dir + "/t5-small.safetensors";
  write_synthetic_text_encoder(small, quant::ConversionTarget::parse("bf16"), 0, path);
  const TextEncoderSource src = open_text_encoder(path, std::nullopt, TokenizerSearch{});
  auto backend = runtime::make_cpu_backend({});
  arch::ModelConfig model = arch::preset("wan-tiny", "bench");
  std::get<arch::WanParams>(model.params).text_dim = small.t5.dim;
  std::get<arch::WanParams>(model.params).text_len = 512;
  PromptConditioner conditioner(model, std::nullopt, PlacedEncoder{&src, backend.get(), false});
  const auto prompt_of = [](int job) { return fmt::format("{} (variation {})", kPrompts[size_t(job) % kPrompts.size()], job % 10); };

  auto t = Clock::now();
  for (int j = 0; j < jobs; ++j) conditioner.encode(prompt_of(j), std::nullopt);
  const double uncached = seconds_since(t);
  launcher::PromptCache cache("");
  t = Clock::now();
  for (int j = 0; j < jobs; ++j)
    cache.get(conditioner.identity() + prompt_of(j), [&] { return conditioner.encode(prompt_of(j), std::nullopt); });
  const double cached = seconds_since(t);
  fmt::print("\nprompt cache, {} jobs over 10 prompts, small umT5 (4 layers, width 512):\n", jobs);
  fmt::print("  without the cache {:.3f} s ({} encodings), with it {:.3f} s ({} encodings, {} hits): {:.1f}x less\n",
             uncached, jobs, cached, cache.encodings(), cache.hits(), uncached / cached);
  for (double s : xxl_seconds)
    fmt::print("  T5-XXL at {:.2f} s per prompt: the cache saves {} x {:.2f} s = {:.0f} s ({:.1f} min) of {:.0f} s\n", s,
               jobs - int(cache.encodings()), s, double(jobs - int(cache.encodings())) * s,
               double(jobs - int(cache.encodings())) * s / 60, double(jobs) * s);
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("T5-XXL on the CPU backend and the prompt cache");
  std::vector<std::string> files;
  int prompts = 3, jobs = 100;
  app.add_option("files", files, "T5 encoder files (ditrun synth --arch t5 --preset full ...)");
  app.add_option("--prompts", prompts, "Prompts per file")->capture_default_str();
  app.add_option("--small-jobs", jobs, "Jobs of the prompt-cache run")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
  const double sgemm = bench::measured_sgemm_gflops(512, 4096, 4096, 5);  // one T5-XXL projection over 512 tokens
  fmt::print("measured OpenBLAS sgemm 512x4096x4096 on {} threads: {:.1f} GFLOP/s (the limit below)\n", host_threads(), sgemm);
  std::vector<double> seconds;
  for (const std::string& f : files) seconds.push_back(bench_t5(f, prompts, sgemm));
  bench_cache(jobs, seconds);
  } catch (const std::exception& e) {
    fmt::print(stderr, "ditrun_bench_text: {}\n", e.what());
    return 1;
  }
}
