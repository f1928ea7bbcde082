// The Euler sampler on velocity fields whose exact answers are known, classifier-free
// guidance and the x0 estimate.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/core/error.h"
#include "runtime/sampling/euler.h"
#include "runtime/sampling/noise.h"
#include "runtime/sampling/schedule.h"

namespace ditrun::runtime {
namespace {

using ::testing::HasSubstr;

TEST(Euler, ConstantVelocityMovesByTheSigmaSpan) {
  HostTensor x({3}, {1.0f, 2.0f, 3.0f});
  const std::vector<double> sigmas{1.0, 0.75, 0.4, 0.0};
  const std::vector<float> v{0.5f, -1.0f, 2.0f};
  std::vector<double> seen_sigmas;
  std::vector<int> seen_steps;
  euler_sample(
      x, sigmas,
      [&](const HostTensor& in, double sigma, HostTensor& out) {
        EXPECT_EQ(out.shape, in.shape);
        seen_sigmas.push_back(sigma);
        out.data = v;
      },
      [&](int step, int steps) {
        EXPECT_EQ(steps, 3);
        seen_steps.push_back(step);
      });
  // (σ_end − σ_0)·v = −v.
  EXPECT_NEAR(x.data[0], 0.5, 1e-6);
  EXPECT_NEAR(x.data[1], 3.0, 1e-6);
  EXPECT_NEAR(x.data[2], 1.0, 1e-6);
  EXPECT_EQ(seen_sigmas, (std::vector<double>{1.0, 0.75, 0.4}));  // the last sigma is never evaluated
  EXPECT_EQ(seen_steps, (std::vector<int>{1, 2, 3}));
}

TEST(Euler, StraightFlowLandsOnTheDataPoint) {
  // For a single data point x0 the exact velocity is v(x, σ) = (x − x0)/σ (models.md §0.4:
  // x = (1−σ)·x0 + σ·ε, v = ε − x0). Its paths are straight lines, which Euler follows
  // exactly on any grid: the sample must end on x0 whatever the schedule.
  const HostTensor x0({2, 3, 4}, [] {
    std::vector<float> v(24);
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(std::sin(double(i)));
    return v;
  }());
  for (const Shift& shift : {Shift::none(), Shift::constant(5), Shift::flux_dynamic()}) {
    HostTensor x = seeded_noise(3, x0.shape);
    euler_sample(x, flow_sigmas(7, shift, 1024), [&](const HostTensor& in, double sigma, HostTensor& v) {
      for (size_t i = 0; i < in.data.size(); ++i) v.data[i] = float((in.data[i] - x0.data[i]) / sigma);
    });
    for (size_t i = 0; i < x.data.size(); ++i) EXPECT_NEAR(x.data[i], x0.data[i], 5e-6) << shift.str() << " " << i;
  }
}

TEST(Euler, FollowsTheUpdateRuleOnACurvedField) {
  // dx/dσ = x from σ = 1 to 0: N uniform Euler steps give x·(1 − 1/N)^N exactly (the true
  // solution is x/e), so the update rule is checked step by step, not only at the end.
  for (int n : {1, 2, 5, 20}) {
    HostTensor x({2}, {1.0f, -3.0f});
    euler_sample(x, flow_sigmas(n, Shift::none(), 0),
                 [](const HostTensor& in, double, HostTensor& v) { v.data = in.data; });
    const double factor = std::pow(1.0 - 1.0 / n, n);
    EXPECT_NEAR(x.data[0], factor, 1e-6) << n;
    EXPECT_NEAR(x.data[1], -3 * factor, 3e-6) << n;
  }
}

TEST(Euler, RefusesBadInput) {
  HostTensor x({2}, {1.0f, 2.0f});
  const auto zero = [](const HostTensor&, double, HostTensor&) {};
  const std::vector<double> one{1.0};
  EXPECT_THROW(euler_sample(x, one, zero), Error);
  const std::vector<double> two{1.0, 0.0};
  try {
    euler_sample(x, two, [](const HostTensor&, double, HostTensor& v) { v = HostTensor({3}); });
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("velocity"));
    EXPECT_THAT(e.what(), HasSubstr("[3]"));
  }
}

TEST(Cfg, CombinesCondAndUncond) {
  const HostTensor cond({3}, {1.0f, 2.0f, -1.0f});
  const HostTensor uncond({3}, {0.5f, 2.0f, 1.0f});
  HostTensor out;
  cfg_combine(cond, uncond, 5.0, out);
  EXPECT_EQ(out.shape, cond.shape);
  EXPECT_FLOAT_EQ(out.data[0], 0.5f + 5 * 0.5f);
  EXPECT_FLOAT_EQ(out.data[1], 2.0f);
  EXPECT_FLOAT_EQ(out.data[2], 1.0f + 5 * -2.0f);
  cfg_combine(cond, uncond, 1.0, out);
  EXPECT_EQ(out.data, cond.data);
  cfg_combine(cond, uncond, 0.0, out);
  EXPECT_EQ(out.data, uncond.data);
  // In place over one of the inputs.
  HostTensor in_place = cond;
  cfg_combine(in_place, uncond, 3.0, in_place);
  EXPECT_FLOAT_EQ(in_place.data[2], 1.0f + 3 * -2.0f);
  EXPECT_THROW(cfg_combine(cond, HostTensor({4}), 2.0, out), Error);
}

TEST(Denoised, RecoversX0FromTheTrueVelocity) {
  const HostTensor x0({4}, {0.5f, -1.0f, 2.0f, 0.0f});
  const HostTensor eps({4}, {1.0f, 0.25f, -0.5f, 2.0f});
  const double sigma = 0.625;  // exact in binary, so x_σ is exact too
  HostTensor x({4}), v({4});
  for (size_t i = 0; i < 4; ++i) {
    x.data[i] = float((1 - sigma) * x0.data[i] + sigma * eps.data[i]);
    v.data[i] = eps.data[i] - x0.data[i];
  }
  const HostTensor got = denoised(x, sigma, v);
  EXPECT_EQ(got.shape, x0.shape);
  for (size_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(got.data[i], x0.data[i]);
  EXPECT_THROW(denoised(x, sigma, HostTensor({2})), Error);
}

}  // namespace
}  // namespace ditrun::runtime
