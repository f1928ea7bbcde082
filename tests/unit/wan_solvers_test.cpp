// Wan's official solvers (runtime/sampling/wan_solvers.h) against the official sampling loops
// in ../shared/testdata/reference (Wan2.1/2.2 generate with FlowUniPCMultistepScheduler and
// FlowDPMSolverMultistepScheduler): the schedule (float32 sigmas and integer timesteps)
// exactly, and the solver alone, fed the stored velocities, reproducing every step's latent
// (and UniPC's corrected sample) within 1e-5. TI2V's frame-0 reset is applied as its loop
// does.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "models/formats/checkpoint.h"
#include "models/pipeline/tensor_files.h"
#include "runtime/core/error.h"
#include "runtime/sampling/wan_solvers.h"
#include "test_paths.h"

namespace ditrun::runtime {
namespace {

double max_diff(const HostTensor& a, const HostTensor& b) {
  EXPECT_EQ(a.data.size(), b.data.size());
  double worst = 0;
  for (size_t i = 0; i < a.data.size() && i < b.data.size(); ++i)
    worst = std::max(worst, std::fabs(double(a.data[i]) - b.data[i]));
  return worst;
}

class WanSolverCase : public testing::TestWithParam<std::string> {};

TEST_P(WanSolverCase, ScheduleAndEveryStepFromTheStoredVelocities) {
  const std::string path = test::testdata("reference/" + GetParam() + ".io.safetensors");
  const auto metadata = formats::Checkpoint(path).safetensors_metadata();
  const auto io = models::read_host_tensors(path);
  const auto solver = wan_solver_from_name(metadata.at("sample_solver"));
  ASSERT_TRUE(solver) << metadata.at("sample_solver");
  const int steps = std::stoi(metadata.at("steps"));
  const WanSchedule schedule = wan_schedule(*solver, steps, std::stod(metadata.at("shift")));

  const HostTensor& sigmas = io.at("sample.sigmas");
  const HostTensor& timesteps = io.at("sample.timesteps");
  ASSERT_EQ(schedule.sigmas.size(), sigmas.data.size());
  ASSERT_EQ(schedule.timesteps.size(), timesteps.data.size());
  for (size_t k = 0; k < sigmas.data.size(); ++k) EXPECT_EQ(float(schedule.sigmas[k]), sigmas.data[k]) << "sigma " << k;
  for (size_t k = 0; k < timesteps.data.size(); ++k) EXPECT_EQ(schedule.timesteps[k], timesteps.data[k]) << "t " << k;

  const bool ti2v = io.count("sample.mask") > 0;
  HostTensor x = ti2v ? io.at("sample.start") : io.at("sample.noise");
  SolverHistory history;
  for (int k = 0; k < steps; ++k) {
    wan_solver_step(*solver, schedule.sigmas, k, x, io.at(fmt::format("step.{}.velocity", k)), history);
    if (ti2v) {  // frame 0 back to the image latent: (1 − mask)·image + mask·x
      EXPECT_LT(max_diff(x, io.at(fmt::format("step.{}.solver_out", k))), 1e-5) << "solver_out " << k;
      const HostTensor& mask = io.at("sample.mask");
      const HostTensor& image = io.at("in.image_latent");
      const int64_t frame = image.numel() / mask.shape[1];  // positions of one latent frame and channel
      const int64_t frames = mask.shape[2];
      for (size_t i = 0; i < x.data.size(); ++i) {
        const int64_t channel = int64_t(i) / (frames * frame), pos = int64_t(i) % frame;
        const float m = mask.data[i];
        if (m == 0.0f) x.data[i] = image.data[size_t(channel * frame + pos)];
      }
    }
    EXPECT_LT(max_diff(x, io.at(fmt::format("step.{}.latent", k))), 1e-5) << GetParam() << " step " << k;
    if (k >= 1 && io.count(fmt::format("step.{}.corrected", k))) {
      EXPECT_LT(max_diff(history.corrected, io.at(fmt::format("step.{}.corrected", k))), 1e-5) << "corrected " << k;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, WanSolverCase,
                         testing::Values("wan21-tiny-unipc", "wan21-tiny-dpmpp", "wan22-tiny-a14b", "wan22-tiny-ti2v"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(WanSolvers, ABadStepOrShapeIsRefused) {
  const WanSchedule s = wan_schedule(WanSolver::unipc, 3, 5.0);
  HostTensor x(Shape{2, 2}), v(Shape{2, 3});
  SolverHistory history;
  EXPECT_THROW(wan_solver_step(WanSolver::unipc, s.sigmas, 0, x, v, history), Error);
  HostTensor ok(Shape{2, 2});
  EXPECT_THROW(wan_solver_step(WanSolver::unipc, s.sigmas, 3, x, ok, history), Error);
  EXPECT_THROW(wan_schedule(WanSolver::dpmpp, 0, 5.0), Error);
  EXPECT_FALSE(wan_solver_from_name("euler"));
}

}  // namespace
}  // namespace ditrun::runtime
