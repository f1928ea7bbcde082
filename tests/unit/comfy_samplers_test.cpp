// ComfyUI's schedulers and samplers for flow models against tests/data/comfy-samplers, made by
// running ComfyUI's own sampling code (commit a125cd8; its README says how) with an analytic
// stand-in model, denoised(x, σ) = 0.8·tanh(x)·(1 − 0.3σ) + 0.1σ:
//  - every schedule (simple, normal, beta, sgm_uniform at shift 5 and 1, N = 4..7, and the
//    KSampler node's UniPC variant) within 1e-6;
//  - euler, dpmpp_2m, uni_pc and uni_pc_bh2 over 6 steps (orders up to 3 for UniPC, so the
//    higher-order terms show) on the simple, beta and normal schedules: every model input and
//    the result within 2e-6, running the whole loop from the start latent.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "models/pipeline/tensor_files.h"
#include "reference_case.h"
#include "runtime/sampling/comfy_schedules.h"
#include "runtime/sampling/sampler.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

runtime::HostTensors comfy_file(const std::string& name) {
  return models::read_host_tensors(project_testdata("comfy-samplers/" + name + ".safetensors"));
}

void expect_sigmas(const std::vector<double>& got, const HostTensor& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.data.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want.data[i], 1e-6) << what << " sigma " << i;
}

TEST(ComfySchedules, MatchComfyUI) {
  const auto schedules = comfy_file("schedules");
  int checked = 0;
  for (const char* name : {"simple", "normal", "beta", "sgm_uniform"}) {
    const auto scheduler = runtime::comfy_scheduler_from_name(name);
    ASSERT_TRUE(scheduler);
    for (const auto& [shift, steps] : {std::pair{5, 4}, {5, 6}, {5, 7}, {1, 5}}) {
      const std::string key = fmt::format("{}.shift{}.n{}", name, shift, steps);
      expect_sigmas(runtime::comfy_sigmas(*scheduler, steps, shift), schedules.at(key), key);
      ++checked;
    }
    const std::string node = fmt::format("{}.shift5.n6.unipc_node", name);
    expect_sigmas(runtime::comfy_sigmas(*scheduler, 6, 5.0, true), schedules.at(node), node);
    ++checked;
  }
  EXPECT_EQ(checked, 20);
  EXPECT_FALSE(runtime::comfy_scheduler_from_name("karras"));
}

TEST(ComfySchedules, BetaQuantileIsTheInverseOfTheBetaCdf) {
  EXPECT_EQ(runtime::beta_quantile(0.5, 0.6, 0.6), 0.5);
  EXPECT_EQ(runtime::beta_quantile(0, 0.6, 0.6), 0);
  EXPECT_EQ(runtime::beta_quantile(1, 0.6, 0.6), 1);
  // Beta(1, 1) is uniform; Beta(2, 1) has CDF x², so its quantile is √p.
  EXPECT_NEAR(runtime::beta_quantile(0.3, 1, 1), 0.3, 1e-12);
  EXPECT_NEAR(runtime::beta_quantile(0.3, 2, 1), std::sqrt(0.3), 1e-12);
  // Symmetric: q(1 − p) = 1 − q(p).
  EXPECT_NEAR(runtime::beta_quantile(0.8, 0.6, 0.6), 1 - runtime::beta_quantile(0.2, 0.6, 0.6), 1e-12);
}

struct SamplerCase {
  std::string file, sampler, scheduler;
  bool node = true;  // sigmas as the KSampler node makes them (UniPC: one step more, one dropped)
};

class ComfySamplerLoop : public testing::TestWithParam<SamplerCase> {};

TEST_P(ComfySamplerLoop, ReproducesEveryModelInputAndTheResult) {
  const SamplerCase& c = GetParam();
  const auto ref = comfy_file(c.file);
  const auto kind = runtime::sampler_from_name(c.sampler);
  ASSERT_TRUE(kind);
  const std::vector<double> sigmas = runtime::comfy_sigmas(*runtime::comfy_scheduler_from_name(c.scheduler), 6, 5.0,
                                                           c.node && runtime::is_comfy_unipc(*kind));
  expect_sigmas(sigmas, ref.at("sigmas"), c.file);
  HostTensor x = ref.at("x_start");
  runtime::SolverHistory history;
  for (int k = 0; k < 6; ++k) {
    EXPECT_LT(max_abs_diff(x, ref.at(fmt::format("call.{}.x", k))), 2e-6) << c.file << " call " << k;
    // The stand-in model, in float32 as torch evaluates it; its velocity (x − D)/σ.
    const float s = float(sigmas[size_t(k)]);
    HostTensor v(x.shape);
    for (size_t i = 0; i < x.data.size(); ++i) {
      const float d = 0.8f * std::tanh(x.data[i]) * (1.0f - 0.3f * s) + 0.1f * s;
      v.data[i] = float((double(x.data[i]) - double(d)) / double(s));
    }
    runtime::sampler_step(*kind, sigmas, k, x, v, history);
  }
  EXPECT_LT(max_abs_diff(x, ref.at("result")), 2e-6) << c.file;
}

INSTANTIATE_TEST_SUITE_P(
    ComfyUI, ComfySamplerLoop,
    testing::Values(SamplerCase{"euler-simple", "euler", "simple"}, SamplerCase{"dpmpp_2m-simple", "dpmpp_2m", "simple"},
                    SamplerCase{"dpmpp_2m-beta", "dpmpp_2m", "beta"}, SamplerCase{"dpmpp_2m-normal", "dpmpp_2m", "normal"},
                    SamplerCase{"uni_pc-simple", "uni_pc", "simple"}, SamplerCase{"uni_pc-beta", "uni_pc", "beta"},
                    SamplerCase{"uni_pc-normal", "uni_pc", "normal"},
                    SamplerCase{"uni_pc_bh2-simple", "uni_pc_bh2", "simple"},
                    SamplerCase{"uni_pc-simple-custom", "uni_pc", "simple", false}),
    [](const auto& info) { return test_label(info.param.file); });

}  // namespace
}  // namespace ditrun::test
