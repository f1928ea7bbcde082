// Sampling against the official implementations: for every reference case and batch item,
// Euler from `sample.noise` with the case's conditioning reproduces `sample.latent` within
// 1e-3, on a schedule equal to `sample.sigmas`. Wan's official solvers (unipc, dpm++) run the
// whole loop with the wan21-tiny-t2v model as Wan2.1's WanT2V.generate does (integer
// timesteps, CFG 5) and reproduce every step's latent within 1e-3; so does Wan 2.2 TI2V's
// image-to-video loop (per-token timesteps, the image's frame held fixed).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "models/pipeline/denoiser.h"
#include "models/pipeline/tensor_files.h"
#include "reference_case.h"
#include "runtime/sampling/euler.h"
#include "runtime/sampling/schedule.h"
#include "runtime/sampling/wan_solvers.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

class ReferenceSample : public testing::TestWithParam<std::string> {};

TEST_P(ReferenceSample, EulerReproducesTheLatent) {
  ReferenceCase rc(GetParam(), "");
  const auto& cfg = rc.source.config;
  const bool flux = cfg.family == arch::Family::Flux;
  const auto denoiser = models::make_denoiser(cfg);
  const auto call = models::local_network(*rc.backend, *rc.network, *rc.weights);
  const HostTensor& noise = rc.io.at("sample.noise");
  const HostTensor& latent = rc.io.at("sample.latent");
  const HostTensor& ref_sigmas = rc.io.at("sample.sigmas");

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
    denoiser->check_conditioning(cond, g);
    const auto sigmas = runtime::flow_sigmas(cfg.sampling.steps, runtime::Shift::parse(cfg.sampling.shift),
                                             denoiser->image_tokens(x.shape));
    ASSERT_EQ(sigmas.size(), ref_sigmas.data.size());
    for (size_t i = 0; i < sigmas.size(); ++i) EXPECT_NEAR(sigmas[i], ref_sigmas.data[i], 1e-6) << "sigma " << i;
    runtime::euler_sample(x, sigmas, [&](const HostTensor& xs, double s, HostTensor& v) {
      v = denoiser->velocity(xs, s, cond, g, call);
    });
    EXPECT_LT(max_abs_diff(x, batch_item(latent, b)), 1e-3) << "batch item " << b;
  }
}

class ReferenceWanSolver : public testing::TestWithParam<std::string> {};

TEST_P(ReferenceWanSolver, WholeLoopReproducesEveryStep) {
  ReferenceCase rc("wan21-tiny-t2v", "");
  const auto io = models::read_host_tensors(testdata("reference/" + GetParam() + ".io.safetensors"));
  const auto denoiser = models::make_denoiser(rc.source.config);
  const auto call = models::local_network(*rc.backend, *rc.network, *rc.weights);
  const auto solver = runtime::wan_solver_from_name(GetParam() == "wan21-tiny-unipc" ? "unipc" : "dpm++");
  const int steps = int(io.at("sample.timesteps").numel());
  const runtime::WanSchedule schedule = runtime::wan_schedule(*solver, steps, 5.0);
  runtime::Conditioning cond{{{"context", batch_item(io.at("in.context"), 0)},
                              {"context_neg", batch_item(io.at("in.context_neg"), 0)}},
                             GetParam()};
  const runtime::Guidance g{0.0, 5.0};
  HostTensor x = batch_item(io.at("sample.noise"), 0);
  runtime::SolverHistory history;
  for (int k = 0; k < steps; ++k) {
    const HostTensor v = denoiser->velocity_from_output(
        call(denoiser->network_inputs(x, schedule.sigmas[size_t(k)], schedule.timesteps[size_t(k)], cond, g)), x.shape, g);
    runtime::wan_solver_step(*solver, schedule.sigmas, k, x, v, history);
    EXPECT_LT(max_abs_diff(x, batch_item(io.at(fmt::format("step.{}.latent", k)), 0)), 1e-3) << "step " << k;
  }
}

// Wan 2.2 TI2V image-to-video (WanTI2V.generate): the first latent frame held at the image's
// latent and at t = 0 in a per-token timestep, UniPC, 4 steps, shift 5, guide 5.
TEST(ReferenceTi2v, WholeLoopReproducesEveryStep) {
  ReferenceCase rc("wan22-tiny-ti2v", "");
  const auto denoiser = models::make_denoiser(rc.source.config);
  const auto call = models::local_network(*rc.backend, *rc.network, *rc.weights);
  const int steps = int(rc.io.at("sample.timesteps").numel());
  const runtime::WanSchedule schedule = runtime::wan_schedule(runtime::WanSolver::unipc, steps, 5.0);
  runtime::Conditioning cond{{{"context", batch_item(rc.io.at("in.context"), 0)},
                              {"context_neg", batch_item(rc.io.at("in.context_neg"), 0)},
                              {std::string(runtime::kFixedFrames), batch_item(rc.io.at("in.image_latent"), 0)}},
                             "wan22-tiny-ti2v"};
  const runtime::Guidance g{0.0, 5.0};
  HostTensor x = batch_item(rc.io.at("sample.noise"), 0);
  runtime::reset_fixed_frames(x, cond.tensors.at(std::string(runtime::kFixedFrames)));
  EXPECT_LT(max_abs_diff(x, batch_item(rc.io.at("sample.start"), 0)), 1e-7);
  runtime::SolverHistory history;
  for (int k = 0; k < steps; ++k) {
    const runtime::HostTensors inputs =
        denoiser->network_inputs(x, schedule.sigmas[size_t(k)], schedule.timesteps[size_t(k)], cond, g);
    // Both CFG halves get the per-token timesteps the official run gave the model.
    for (int64_t b = 0; b < 2; ++b)
      EXPECT_EQ(max_abs_diff(batch_item(inputs.at("t"), b), batch_item(rc.io.at(fmt::format("step.{}.t_tokens", k)), 0)), 0)
          << "step " << k;
    const HostTensor v = denoiser->velocity_from_output(call(inputs), x.shape, g);
    runtime::wan_solver_step(runtime::WanSolver::unipc, schedule.sigmas, k, x, v, history);
    runtime::reset_fixed_frames(x, cond.tensors.at(std::string(runtime::kFixedFrames)));
    EXPECT_LT(max_abs_diff(x, batch_item(rc.io.at(fmt::format("step.{}.latent", k)), 0)), 1e-3) << "step " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Official, ReferenceWanSolver, testing::Values("wan21-tiny-unipc", "wan21-tiny-dpmpp"),
                         [](const auto& info) { return test_label(info.param); });

INSTANTIATE_TEST_SUITE_P(AllCases, ReferenceSample,
                         testing::Values("flux-tiny-dev", "flux-tiny-schnell", "wan21-tiny-t2v"),
                         [](const auto& info) { return test_label(info.param); });

}  // namespace
}  // namespace ditrun::test
