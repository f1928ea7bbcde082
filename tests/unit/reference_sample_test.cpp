// Sampling against the official implementations: for every reference case and batch item,
// Euler from `sample.noise` with the case's conditioning reproduces `sample.latent` within
// 1e-3, on a schedule equal to `sample.sigmas`.
#include <gtest/gtest.h>

#include "models/pipeline/denoiser.h"
#include "reference_case.h"
#include "runtime/sampling/euler.h"
#include "runtime/sampling/schedule.h"

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

INSTANTIATE_TEST_SUITE_P(AllCases, ReferenceSample,
                         testing::Values("flux-tiny-dev", "flux-tiny-schnell", "wan21-tiny-t2v"),
                         [](const auto& info) { return test_label(info.param); });

}  // namespace
}  // namespace ditrun::test
