// The planner's prediction against the clock on the CPU backend: a Flux shaped so that a step
// is GEMM- and attention-bound (hidden 512, 1088 tokens), the machine's rates calibrated at
// that shape. The all-resident plan's predicted step time must be within 20% of the measured
// one, and a plan that streams half the model through the copy stream must cost, relative to
// all-resident, what the plan predicts within 20%.
//
// Timing tests run alone (RUN_SERIAL): another test sharing the cores would slow the measured
// step but not the calibration taken earlier in the same process. The machines CI runs on are
// virtual and shared, so a neighbour can still slow one half of the comparison: each check
// makes up to three independent attempts (calibrate, plan, measure) and passes when one
// lands within 20%. A prediction that is wrong misses all three.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "launcher/builtin_model.h"
#include "launcher/calibration.h"
#include "launcher/plan_timing.h"
#include "launcher/planning.h"
#include "models/arch/detect.h"
#include "models/pipeline/job_geometry.h"
#include "models/pipeline/model_cost.h"
#include "models/pipeline/network.h"
#include "partition/hardware_profile.h"
#include "runtime/core/units.h"

namespace ditrun::test {
namespace {

constexpr int64_t kPromptTokens = 64, kPixels = 512;

arch::ModelConfig compute_bound_flux() {
  arch::ModelConfig config = arch::preset("flux-tiny", "test");
  auto& p = std::get<arch::FluxParams>(config.params);
  p.hidden_size = 512;
  p.num_heads = 4;  // head_dim 128 = 16 + 56 + 56
  p.axes_dim = {16, 56, 56};
  p.depth = 4;
  p.depth_single_blocks = 8;
  p.context_in_dim = 512;
  p.vec_in_dim = 256;
  return config;
}

class PlanPrediction : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    files_ = new launcher::BuiltinModel(compute_bound_flux(), "bf16", kPromptTokens);
    source_ = new models::ModelSource(models::open_model(files_->model_path(), std::nullopt));
    network_ = models::make_network(source_->config).release();
    models::JobSettings settings;
    settings.width = settings.height = kPixels;
    settings.text_tokens = kPromptTokens;
    job_ = models::job_geometry(source_->config, settings);
  }
  static void TearDownTestSuite() {
    if (!profile_path_.empty()) std::filesystem::remove(profile_path_);
    delete network_;
    delete source_;
    delete files_;
  }

  // Measures this machine's rates at the model's shape into the profile file plans read.
  static void calibrate() {
    const auto& p = arch::flux_params(source_->config);
    launcher::CalibrationOptions o;
    o.tokens = job_.tokens.image + job_.tokens.text;
    o.hidden = o.inner = p.hidden_size;
    o.attention_tokens = o.tokens;
    o.attention_heads = p.num_heads;
    o.head_dim = p.hidden_size / p.num_heads;
    o.stream_bytes = 64 << 20;
    o.seconds = 0.3;
    o.baseline = *partition::find_builtin_profile("cpu");
    auto backend = runtime::make_cpu_backend();
    profile_path_ = (std::filesystem::temp_directory_path() / ("ditrun-calibrated-" + std::to_string(::getpid()) + ".json")).string();
    std::ofstream(profile_path_) << partition::profile_to_json(launcher::calibrate(*backend, o)).dump(2);
  }

  // Up to three attempts; the ratio of the best one (closest to 1).
  template <class Check>
  static double best_of_three(Check&& check) {
    double best = 0;
    for (int attempt = 0; attempt < 3; ++attempt) {
      calibrate();
      const double ratio = check();
      if (std::abs(ratio - 1) < std::abs(best - 1)) best = ratio;
      if (std::abs(best - 1) <= 0.2) break;
    }
    return best;
  }

  partition::Plan plan(uint64_t device_memory) const {
    launcher::DeviceChoice choice;
    choice.inventory = profile_path_;
    choice.cpu_device_memory_bytes = device_memory;
    choice.cpu_backend = true;
    return launcher::plan_model(source_->config, *network_, models::checkpoint_weights(*source_->weights), job_, choice)
        .plan;
  }
  launcher::PlanTiming time(const partition::Plan& plan) const {
    const Shape latent{16, kPixels / 8, kPixels / 8};
    return launcher::time_plan(*source_, *network_, plan, latent, files_->cond_path(), {3.5, 1}, {}, 3.0);
  }
  static void report(const std::string& label, const partition::Plan& plan, const launcher::PlanTiming& t) {
    std::printf("[ timing   ] %-26s %s predicted %.4f s, measured %.4f s (x%.3f); streamed %s per step; peak %s of %s\n",
                label.c_str(), std::string(partition::to_string(plan.mode)).c_str(), t.predicted_step_seconds,
                t.measured_step_seconds, t.ratio(), format_bytes(t.streamed_bytes).c_str(),
                format_bytes(t.memory.peak_bytes).c_str(), format_bytes(t.memory.limit_bytes).c_str());
  }

  static launcher::BuiltinModel* files_;
  static models::ModelSource* source_;
  static runtime::Model* network_;
  static models::JobGeometry job_;
  static std::string profile_path_;
};

launcher::BuiltinModel* PlanPrediction::files_ = nullptr;
models::ModelSource* PlanPrediction::source_ = nullptr;
runtime::Model* PlanPrediction::network_ = nullptr;
models::JobGeometry PlanPrediction::job_;
std::string PlanPrediction::profile_path_;

TEST_F(PlanPrediction, AllResidentStepWithinTwentyPercent) {
  const double ratio = best_of_three([&] {
    const partition::Plan p = plan(0);
    EXPECT_EQ(p.mode, partition::PlanMode::single);
    const launcher::PlanTiming t = time(p);
    report("all resident", p, t);
    return t.ratio();
  });
  EXPECT_NEAR(ratio, 1.0, 0.2);
}

// Streaming half the model must cost what the plan says it costs: the measured streamed /
// resident step ratio within 20% of the predicted one. Both plans are timed back to back in
// one attempt, so what a shared machine does to every step alike (a slower neighbour, a
// calibration taken on a busy moment) cancels, and what remains is the price of streaming:
// the copy stream's work and whatever it takes from compute. The absolute accuracy of a step
// is the test above.
TEST_F(PlanPrediction, HalfStreamedStepCostsWhatThePlanPredicts) {
  const double ratio = best_of_three([&] {
    const partition::Plan resident = plan(0);
    const launcher::PlanTiming all = time(resident);
    report("all resident", resident, all);
    // Room for the activations and 60% of the weights: the slots take some, the rest streams.
    const partition::RankPlan& r = resident.ranks[0];
    const uint64_t budget = r.activation_bytes + r.resident_bytes() * 6 / 10;
    const partition::Plan p = plan(budget);
    EXPECT_EQ(p.mode, partition::PlanMode::offload);
    const launcher::PlanTiming t = time(p);
    report("60% budget, streaming", p, t);
    EXPECT_GT(t.streamed_bytes, r.resident_bytes() / 4);
    EXPECT_LE(t.memory.peak_bytes, budget) << "the backend's ledger enforces the plan's budget";
    const double predicted = t.predicted_step_seconds / all.predicted_step_seconds;
    const double measured = t.measured_step_seconds / all.measured_step_seconds;
    std::printf("[ timing   ] streamed / resident step: predicted x%.3f, measured x%.3f\n", predicted, measured);
    return measured / predicted;
  });
  EXPECT_NEAR(ratio, 1.0, 0.2);
}

}  // namespace
}  // namespace ditrun::test
