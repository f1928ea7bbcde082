// The reference cases of ../shared/testdata on the CUDA backend: the official outputs within
// the CPU backend's tolerances (f32 mode 1e-4, bf16 mode 0.08), sampling within 1e-3, the
// same bits run to run, and streamed placements bit-identical to all-resident (the
// WeightStore's copies on a CUDA copy stream behind compute).
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "gpu_test_support.h"
#include "models/pipeline/denoiser.h"
#include "reference_case.h"
#include "runtime/cuda/cuda_backend.h"
#include "runtime/exec/model_call.h"
#include "runtime/sampling/euler.h"
#include "runtime/sampling/schedule.h"

namespace ditrun::test {
namespace {

using runtime::Precision;

std::unique_ptr<runtime::Backend> cuda(Precision p, const std::string& attention = "auto") {
  runtime::CudaBackendOptions o;
  o.precision = p;
  o.arena_bytes = 2ull << 30;
  o.attention = attention;
  return runtime::make_cuda_backend(o);
}

struct Case {
  std::string name, variant;
};
std::string label(const Case& c) { return test_label(c.name + (c.variant.empty() ? "" : "_" + c.variant)); }

const Case kCases[] = {{"flux-tiny-dev", ""},     {"flux-tiny-dev", "Q8_0"}, {"flux-tiny-dev", "Q4_K"},
                       {"flux-tiny-schnell", ""}, {"wan21-tiny-t2v", ""},    {"wan21-tiny-t2v", "Q5_0"},
                       {"qwen-image-tiny", ""},   {"sd35-tiny", ""},         {"sd35-medium-tiny", ""}};

// max |a − b| over the rows of [B, L, C] tensors, only those where `mask` [B, L] (Qwen's
// in.txt_mask, for the text stream's padded rows) is non-zero when one is given.
double rows_diff(const HostTensor& a, const HostTensor& b, const HostTensor* mask) {
  if (!mask) return max_abs_diff(a, b);
  EXPECT_EQ(a.shape, b.shape);
  const int64_t rows = a.shape[0] * a.shape[1], C = a.shape[2];
  double m = 0;
  for (int64_t r = 0; r < rows; ++r)
    if (mask->data[size_t(r)] != 0)
      for (int64_t c = 0; c < C; ++c) m = std::max(m, double(std::fabs(a.data[size_t(r * C + c)] - b.data[size_t(r * C + c)])));
  return m;
}

class CudaReference : public testing::TestWithParam<std::tuple<Case, Precision>> {
 protected:
  void SetUp() override { DITRUN_REQUIRE_GPU(); }
};

TEST_P(CudaReference, OutputAndEveryBlockWithinTheCpuTolerance) {
  const auto& [c, precision] = GetParam();
  ReferenceCase rc(c.name, c.variant, cuda(precision));
  const double tol = precision == Precision::F32 ? 1e-4 : 0.08;
  std::map<std::string, HostTensor> blocks;
  const HostTensor out = runtime::run_model(*rc.backend, *rc.network, *rc.weights, reference_inputs(rc.io),
                                            [&](const std::string& n, const HostTensor& t) { blocks[n] = t; });
  const double err = max_abs_diff(out, rc.io.at("out"));
  EXPECT_LT(err, tol);
  RecordProperty("max_abs_diff", std::to_string(err));
  std::printf("[ measured ] %s %s: out max |diff| %.3g\n", label(c).c_str(), precision == Precision::F32 ? "f32" : "bf16",
              err);
  // Every block output the case records (the io files also hold embeddings, tables and steps).
  const auto mask = rc.io.find("in.txt_mask");
  int compared = 0;
  for (const auto& [name, ref] : rc.io) {
    if (!blocks.count(name)) continue;
    const bool text_rows = name.ends_with(".out.txt") && mask != rc.io.end();
    EXPECT_LT(rows_diff(blocks.at(name), ref, text_rows ? &mask->second : nullptr), tol) << name;
    ++compared;
  }
  EXPECT_GT(compared, 0) << "no block output recorded by the case";
  // Run to run: the same bits.
  const HostTensor again = runtime::run_model(*rc.backend, *rc.network, *rc.weights, reference_inputs(rc.io));
  EXPECT_EQ(std::memcmp(out.data.data(), again.data.data(), out.data.size() * 4), 0) << "not deterministic";
}

INSTANTIATE_TEST_SUITE_P(AllCases, CudaReference,
                         testing::Combine(testing::ValuesIn(kCases), testing::Values(Precision::F32, Precision::BF16)),
                         [](const auto& info) {
                           return label(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) == Precision::F32 ? "_f32" : "_bf16");
                         });

class CudaOwnAttention : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override { DITRUN_REQUIRE_GPU(); }
};

// bf16 with the own flash kernel instead of cuDNN: the same tolerance.
TEST_P(CudaOwnAttention, Bf16WithinTolerance) {
  ReferenceCase rc(GetParam().name, GetParam().variant, cuda(Precision::BF16, "flash"));
  const HostTensor out = runtime::run_model(*rc.backend, *rc.network, *rc.weights, reference_inputs(rc.io));
  EXPECT_LT(max_abs_diff(out, rc.io.at("out")), 0.08);
}

INSTANTIATE_TEST_SUITE_P(Bf16Cases, CudaOwnAttention,
                         testing::Values(Case{"flux-tiny-dev", ""}, Case{"wan21-tiny-t2v", ""},
                                         Case{"qwen-image-tiny", ""}),
                         [](const auto& info) { return label(info.param); });

class CudaSample : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { DITRUN_REQUIRE_GPU(); }
};

TEST_P(CudaSample, EulerReproducesTheLatentInF32) {
  ReferenceCase rc(GetParam(), "", cuda(Precision::F32));
  const auto& cfg = rc.source.config;
  const bool flux = cfg.family == arch::Family::Flux;
  const auto denoiser = models::make_denoiser(cfg);
  const auto call = models::local_network(*rc.backend, *rc.network, *rc.weights);
  const HostTensor& noise = rc.io.at("sample.noise");
  for (int64_t b = 0; b < noise.shape[0]; ++b) {
    HostTensor x = batch_item(noise, b);
    runtime::Conditioning cond{{}, GetParam()};
    runtime::Guidance g{cfg.sampling.guidance, cfg.sampling.cfg};
    if (flux) {
      cond.tensors["txt"] = batch_item(rc.io.at("in.txt"), b);
      cond.tensors["y"] = batch_item(rc.io.at("in.y"), b);
    } else {
      cond.tensors["context"] = batch_item(rc.io.at("in.context"), b);
      cond.tensors["context_neg"] = batch_item(rc.io.at("in.context_neg"), b);
    }
    const auto sigmas = runtime::flow_sigmas(cfg.sampling.steps, runtime::Shift::parse(cfg.sampling.shift),
                                             denoiser->image_tokens(x.shape));
    runtime::euler_sample(x, sigmas, [&](const HostTensor& xs, double s, HostTensor& v) {
      v = denoiser->velocity(xs, s, cond, g, call);
    });
    EXPECT_LT(max_abs_diff(x, batch_item(rc.io.at("sample.latent"), b)), 1e-3) << "batch item " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(AllCases, CudaSample, testing::Values("flux-tiny-dev", "flux-tiny-schnell", "wan21-tiny-t2v"),
                         [](const auto& info) { return test_label(info.param); });

class CudaStreaming : public testing::TestWithParam<int> {
 protected:
  void SetUp() override { DITRUN_REQUIRE_GPU(); }
};

// Every other unit streamed through `depth` slots on a CUDA copy stream: the same bits as all
// resident, over two calls (the streaming cycle wraps).
TEST_P(CudaStreaming, StreamedPlanIsBitIdenticalToAllResident) {
  ReferenceCase resident("flux-tiny-dev", "Q4_K", cuda(Precision::BF16));
  ReferenceCase streamed("flux-tiny-dev", "Q4_K", cuda(Precision::BF16));
  partition::RankPlan rank;
  rank.device = "cuda:0";
  const auto units = runtime::model_units(*streamed.network);
  for (size_t i = 0; i < units.size(); ++i) {
    uint64_t bytes = 0;
    for (const auto& name : units[i].weights)
      if (const Weight* w = streamed.source.weights->find(name)) bytes += w->stored_bytes();
    const bool s = i % 2 == 1;
    rank.blocks.push_back({units[i].name, s ? partition::Home::streamed : partition::Home::resident, bytes});
    if (s) rank.slot_bytes = std::max(rank.slot_bytes, bytes);
  }
  rank.prefetch_depth = GetParam();
  rank.activation_bytes = 64 << 20;
  streamed.weights = std::make_unique<runtime::WeightStore>(
      *streamed.backend, *streamed.network, [&](const std::string& n) { return streamed.source.weights->find(n); },
      rank, 0);
  ASSERT_GT(streamed.weights->streamed_bytes(), 0u);
  const auto in = reference_inputs(resident.io);
  for (int call = 0; call < 2; ++call) {
    const HostTensor a = runtime::run_model(*resident.backend, *resident.network, *resident.weights, in);
    const HostTensor b = runtime::run_model(*streamed.backend, *streamed.network, *streamed.weights, in);
    ASSERT_EQ(a.shape, b.shape);
    EXPECT_EQ(std::memcmp(a.data.data(), b.data.data(), a.data.size() * 4), 0) << "call " << call;
  }
}

INSTANTIATE_TEST_SUITE_P(Depths, CudaStreaming, testing::Values(2, 3),
                         [](const auto& info) { return std::to_string(info.param) + "_slots"; });

}  // namespace
}  // namespace ditrun::test
