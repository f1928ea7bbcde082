// CPU benchmark: seconds per sampling step of the tiny reference models, and one full-size
// FLUX.1 double block at 1024² (4096 image + 512 text tokens), each against the machine's
// measured OpenBLAS sgemm throughput (the physical limit this backend can reach) and, for
// the block, against the simplest alternative: the same block with f32 weights, which needs
// no dequantization at all.
//
//   ditrun_bench_cpu [--testdata DIR] [--encodings bf16,q8_0,f32] [--tokens 4608] [--skip-block]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <map>
#include <random>

#include "bench/sgemm_limit.h"
#include "models/arch/layout.h"
#include "models/flux/flux_blocks.h"
#include "models/pipeline/denoiser.h"
#include "models/pipeline/model_source.h"
#include "models/pipeline/network.h"
#include "models/pipeline/tensor_files.h"
#include "models/synth/synthetic_values.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/core/parallel.h"
#include "runtime/exec/weight_store.h"

using namespace ditrun;
using bench::Clock;
using bench::seconds_since;
using bench::measured_sgemm_gflops;

namespace {

// Seconds per Euler step (one velocity evaluation; both CFG halves for Wan) of a reference case.
void bench_tiny_model(const std::string& testdata, const std::string& name, double peak_gflops) {
  const std::string base = testdata + "/reference/" + name;
  const auto src = models::open_model(base + ".safetensors", base + ".config.json");
  const auto net = models::make_network(src.config);
  auto be = runtime::make_cpu_backend();
  runtime::WeightStore w(*be, *net, [&](const std::string& n) { return src.weights->find(n); });
  const auto io = models::read_host_tensors(base + ".io.safetensors");
  const auto den = models::make_denoiser(src.config);
  const auto call = models::local_network(*be, *net, w);
  const HostTensor& noise = io.at("sample.noise");
  // First batch item as one job.
  Shape job_shape(noise.shape.begin() + 1, noise.shape.end());
  HostTensor x(job_shape, std::vector<float>(noise.data.begin(), noise.data.begin() + shape_numel(job_shape)));
  runtime::Conditioning cond{{}, name};
  const bool flux = src.config.family == arch::Family::Flux;
  auto first = [&](const char* n) {
    const HostTensor& t = io.at(n);
    Shape s(t.shape.begin() + 1, t.shape.end());
    return HostTensor(s, std::vector<float>(t.data.begin(), t.data.begin() + shape_numel(s)));
  };
  runtime::Guidance g;
  if (flux) {
    cond.tensors["txt"] = first("in.txt");
    cond.tensors["y"] = first("in.y");
    g.guidance = 3.5;
  } else {
    cond.tensors["context"] = first("in.context");
    cond.tensors["context_neg"] = first("in.context_neg");
    g.cfg = 5.0;
  }
  den->velocity(x, 0.5, cond, g, call);  // warm-up
  const int steps = 20;
  const auto t = Clock::now();
  for (int i = 0; i < steps; ++i) den->velocity(x, 0.5, cond, g, call);
  const double per_step = seconds_since(t) / steps;
  const int64_t img_tokens = den->image_tokens(x.shape);
  runtime::TokenCounts tokens{img_tokens, flux ? cond.tensors["txt"].shape[0] : arch::wan_params(src.config).text_len};
  double flops = net->prologue_flops(tokens) + net->epilogue_flops(tokens);
  for (const auto& b : net->blocks()) flops += b->flops(tokens);
  flops *= den->calls_per_step(g);
  fmt::print("{:<22} {:>9.3f} ms/step  {:>8.3f} GFLOP/s  {:>6.2f}% of sgemm peak  ({} image tokens, {} call(s)/step)\n",
             name, per_step * 1e3, flops / per_step / 1e9, 100 * flops / per_step / 1e9 / peak_gflops, img_tokens,
             den->calls_per_step(g));
}

// The tensors of double_blocks.0 of full-size FLUX.1-dev, synthetic values, in `storage`.
struct SyntheticBlock {
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<Weight> weights;
};

SyntheticBlock synthetic_double_block(DType storage) {
  arch::ModelConfig config;  // FLUX.1-dev defaults
  SyntheticBlock block;
  std::vector<arch::TensorSpec> specs;
  for (auto& s : arch::tensor_layout(config))
    if (s.name.starts_with("double_blocks.0.")) specs.push_back(s);
  block.bytes.reserve(specs.size());
  block.weights.reserve(specs.size());
  for (const auto& s : specs) {
    const int64_t n = shape_numel(s.shape);
    std::vector<float> values(static_cast<size_t>(n));
    parallel_for(n, 1 << 20, [&](int64_t b, int64_t e) {
      synth::synthetic_values(7, s, uint64_t(b), std::span<float>(values).subspan(size_t(b), size_t(e - b)));
    });
    // Quantized types only for 2-D weights whose rows fit the block; norms and biases f32
    // (as city96 conversions keep them).
    const DType t = s.shape.size() == 2 && s.shape[1] % dtype_info(storage).block_elems == 0 ? storage : DType::F32;
    auto& buf = block.bytes.emplace_back(size_t(dtype_bytes(t, n, s.name)));
    quantize_from_f32(t, values, buf);
    Weight w;
    w.name = s.name;
    w.shape = s.shape;
    w.storage = t;
    w.bytes = buf;
    block.weights.push_back(std::move(w));
  }
  return block;
}

// One block's weights loaded on the backend (a whole model's are a WeightStore's business).
class BlockWeights final : public runtime::WeightLookup {
 public:
  BlockWeights(runtime::Backend& be, const std::vector<Weight>& weights) {
    for (const Weight& w : weights) {
      loaded_.emplace(w.name, be.load_weight(w, be.compute_stream()));
      stored_bytes_ += w.stored_bytes();
    }
  }
  const runtime::DeviceWeight* find(std::string_view name) const override {
    auto it = loaded_.find(name);
    return it == loaded_.end() ? nullptr : &it->second;
  }
  uint64_t stored_bytes() const { return stored_bytes_; }

 private:
  std::map<std::string, runtime::DeviceWeight, std::less<>> loaded_;
  uint64_t stored_bytes_ = 0;
};

double bench_double_block(DType storage, int64_t tokens, double peak_gflops) {
  const SyntheticBlock block = synthetic_double_block(storage);
  arch::ModelConfig config;
  const arch::FluxParams& p = arch::flux_params(config);
  const models::flux::Dims dims(p);
  const auto net_block = models::flux::make_double_block(0, dims);
  auto be = runtime::make_cpu_backend();
  const BlockWeights w(*be, block.weights);
  const int64_t txt = 512, img = tokens - txt, h = dims.hidden;
  runtime::ActivationState state;
  state.set_int("txt_len", txt);
  state.set_int("img_len", img);
  std::vector<float> xs(static_cast<size_t>(tokens * h)), vec(static_cast<size_t>(h)),
      pe(static_cast<size_t>(tokens * dims.head_dim));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (float& v : xs) v = nd(rng);
  for (float& v : vec) v = nd(rng);
  for (size_t i = 0; i < pe.size(); i += 2) {
    const float a = nd(rng);
    pe[i] = std::cos(a);
    pe[i + 1] = std::sin(a);
  }
  auto upload = [&](const std::vector<float>& v, Shape s) {
    Tensor t = be->empty(s);
    be->upload(v, t, be->compute_stream());
    return t;
  };
  state.set("x", upload(xs, {1, tokens, h}));
  state.set("vec", upload(vec, {1, 1, h}));
  state.set("pe", upload(pe, {1, tokens, dims.head_dim}));
  const auto t = Clock::now();
  net_block->forward(*be, w, state);
  be->synchronize(be->compute_stream());
  const double s = seconds_since(t);
  const double flops = net_block->flops({img, txt});
  fmt::print("flux double block {:<6} {:>8.2f} s  {:>8.2f} GFLOP/s  {:>6.2f}% of sgemm peak  ({:.1f} MiB of weights)\n",
             dtype_name(storage), s, flops / s / 1e9, 100 * flops / s / 1e9 / peak_gflops,
             double(w.stored_bytes()) / (1 << 20));
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ditrun CPU benchmark: seconds per step and per Flux double block vs measured sgemm throughput"};
  std::string testdata = DITRUN_TESTDATA_DIR, encodings = "bf16,q8_0,f32";
  int64_t tokens = 4608;
  bool skip_block = false;
  app.add_option("--testdata", testdata, "The shared testdata folder")->capture_default_str();
  app.add_option("--encodings", encodings, "Weight encodings for the full-size block, comma-separated")->capture_default_str();
  app.add_option("--tokens", tokens, "Tokens of the full-size block (image + 512 text)")->capture_default_str();
  app.add_flag("--skip-block", skip_block, "Only the tiny models");
  CLI11_PARSE(app, argc, argv);
  try {
    auto be = runtime::make_cpu_backend();
    fmt::print("backend: {}\n", be->name());
    const double peak = measured_sgemm_gflops(tokens, 3072, 3072);
    fmt::print("measured OpenBLAS sgemm {}x3072x3072: {:.1f} GFLOP/s (the limit below)\n\n", tokens, peak);
    for (const char* name : {"flux-tiny-dev", "flux-tiny-schnell", "wan21-tiny-t2v"}) bench_tiny_model(testdata, name, peak);
    if (skip_block) return 0;
    fmt::print("\n");
    std::map<std::string, double> secs;
    size_t pos = 0;
    while (pos <= encodings.size()) {
      const size_t comma = std::min(encodings.find(',', pos), encodings.size());
      const std::string e = encodings.substr(pos, comma - pos);
      pos = comma + 1;
      const auto t = dtype_from_user_name(e);
      if (!t) fail("unknown encoding '{}'", e);
      secs[e] = bench_double_block(*t, tokens, peak);
    }
    if (secs.count("f32"))
      for (const auto& [e, s] : secs)
        if (e != "f32") fmt::print("{} block / f32 block (dequantization overhead): {:.3f}\n", e, s / secs["f32"]);
  } catch (const Error& e) {
    fmt::print(stderr, "ditrun_bench_cpu: error: {}\n", e.what());
    return 2;
  }
  return 0;
}
