// Wan 2.2 A14B's two experts as one network (runtime/exec/expert_pair.h), against
// wan22-tiny-a14b: two tiny experts (the wan21-tiny-t2v architecture, different weights) and
// the official Wan 2.2 WanT2V.generate loop, UniPC, 8 steps, shift 12, boundary 0.875, guide
// [3, 4] (the io file records which expert ran each step, its guide scale, the model outputs
// and the latents), and the image-to-video A14B case this project made from Wan2.2's
// WanI2V.generate (tests/data/wan22-tiny-i2v-a14b). The whole loop here — expert switch,
// per-expert guidance, image conditioning, solver — must pick the same expert at every step
// and reproduce every step's latent within 1e-3.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "launcher/distributed_run.h"
#include "launcher/job_sampling.h"
#include "launcher/planning.h"
#include "media/png.h"
#include "models/pipeline/denoiser.h"
#include "models/pipeline/model_files.h"
#include "models/pipeline/tensor_files.h"
#include "reference_case.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/exec/expert_pair.h"
#include "runtime/exec/weight_store.h"
#include "runtime/run/sampling_job.h"
#include "runtime/sampling/wan_solvers.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

models::ModelFiles a14b_files() {
  return {testdata("reference/wan22-tiny-a14b-high.safetensors"), std::nullopt,
          testdata("reference/wan22-tiny-a14b.config.json")};
}

TEST(ExpertPair, SidecarNamesTheLowNoiseExpertAndTheReleaseSampling) {
  const models::OpenedModel m = models::open_model_files(a14b_files());
  ASSERT_TRUE(m.low_noise.has_value());
  EXPECT_EQ(m.config().experts, 2);
  EXPECT_TRUE(runtime::is_expert_pair(*m.network));
  EXPECT_DOUBLE_EQ(m.config().sampling.boundary, 0.875);
  EXPECT_DOUBLE_EQ(m.config().sampling.cfg, 4.0);      // guide_scale[1]: high-noise
  EXPECT_DOUBLE_EQ(m.config().sampling.cfg_low, 3.0);  // guide_scale[0]: low-noise
  EXPECT_EQ(m.config().sampling.shift, "12");
  EXPECT_EQ(m.config().sampling.steps, 8);
  EXPECT_EQ(m.config().sampling.sampler, "unipc");
}

TEST(ExpertPair, UnitsHoldBothExpertsWeightsUnderTheirPrefixes) {
  const models::OpenedModel m = models::open_model_files(a14b_files());
  const auto units = runtime::model_units(*m.network);
  ASSERT_EQ(units.size(), 4u);  // prologue, 2 blocks, epilogue
  const auto& block = units[1].weights;
  EXPECT_EQ(block.size() % 2, 0u);
  for (size_t i = 0; i < block.size() / 2; ++i) {
    const auto high = runtime::split_expert_weight_name(block[i]);
    const auto low = runtime::split_expert_weight_name(block[i + block.size() / 2]);
    ASSERT_TRUE(high && low);
    EXPECT_EQ(high->expert, runtime::Expert::high_noise);
    EXPECT_EQ(low->expert, runtime::Expert::low_noise);
    EXPECT_EQ(high->name, low->name);
  }
  // The weights are the two files' own: same name, different bytes.
  const auto find = m.find_weight();
  const Weight* h = find("high_noise/blocks.0.ffn.0.weight");
  const Weight* l = find("low_noise/blocks.0.ffn.0.weight");
  ASSERT_TRUE(h && l);
  EXPECT_NE(h, l);
  EXPECT_EQ(find("blocks.0.ffn.0.weight"), nullptr);
  // The planner prices both experts' bytes.
  const auto stored = m.stored_weights();
  EXPECT_EQ(stored("high_noise/blocks.0.ffn.0.weight")->bytes, h->stored_bytes());
}

TEST(ExpertPair, ACallWithoutItsExpertFailsNamingTheInput) {
  const models::OpenedModel m = models::open_model_files(a14b_files());
  auto backend = runtime::make_cpu_backend({runtime::Precision::F32, 0});
  runtime::WeightStore weights(*backend, *m.network, m.find_weight());
  const auto io = models::read_host_tensors(testdata("reference/wan22-tiny-a14b.io.safetensors"));
  const auto denoiser = models::make_denoiser(m.config());
  runtime::Conditioning cond{{{"context", batch_item(io.at("in.context"), 0)}}, "test"};
  const auto inputs = denoiser->network_inputs(batch_item(io.at("sample.noise"), 0), 0.5, 500.0, cond, {0, 1});
  try {
    models::local_network(*backend, *m.network, weights)(inputs);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model input 'expert'"), std::string::npos) << e.what();
  }
}

TEST(ExpertPair, ExpertsOfDifferentArchitecturesAreRefused) {
  try {
    models::open_model_files({testdata("reference/wan21-tiny-t2v.safetensors"),
                              testdata("reference/wan22-tiny-ti2v.safetensors"), std::nullopt});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("wan22-tiny-ti2v.safetensors differ: params."), std::string::npos) << what;
  }
}

TEST(ExpertPair, TheLowNoiseExpertIsNotTheModel) {
  try {
    models::open_model_files({testdata("reference/wan22-tiny-a14b-low.safetensors"), std::nullopt,
                              testdata("reference/wan22-tiny-a14b.config.json")});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is the config's low-noise expert"), std::string::npos) << e.what();
  }
}

// A two-expert loop case: its files and what the official run did.
struct LoopCase {
  std::string name;
  models::ModelFiles files;
  std::string io;
  double shift;
  int high_steps;  // steps the official run gave the high-noise expert
};

class ExpertLoop : public testing::TestWithParam<LoopCase> {};

TEST_P(ExpertLoop, OfficialTwoExpertLoopIsReproducedStepByStep) {
  const LoopCase& c = GetParam();
  const models::OpenedModel m = models::open_model_files(c.files);
  auto backend = runtime::make_cpu_backend({runtime::Precision::F32, 0});
  runtime::WeightStore weights(*backend, *m.network, m.find_weight());
  const auto call = models::local_network(*backend, *m.network, weights);
  const auto denoiser = models::make_denoiser(m.config());
  const auto io = models::read_host_tensors(c.io);

  runtime::SamplingJob job;
  job.id = c.name;
  job.cond = {{{"context", batch_item(io.at("in.context"), 0)}, {"context_neg", batch_item(io.at("in.context_neg"), 0)}},
              c.name};
  if (io.count("in.y")) job.cond.tensors["y"] = batch_item(io.at("in.y"), 0);  // image-to-video
  job.guidance = {0, m.config().sampling.cfg};
  job.experts = runtime::ExpertSwitch{m.config().sampling.boundary, m.config().sampling.cfg_low};
  denoiser->check_conditioning(job.cond, job.guidance);
  const auto solver = runtime::wan_solver_from_name(m.config().sampling.sampler);
  ASSERT_TRUE(solver);
  runtime::WanSchedule schedule = runtime::wan_schedule(*solver, m.config().sampling.steps, c.shift);
  job.sigmas = schedule.sigmas;
  job.timesteps = schedule.timesteps;

  HostTensor x = batch_item(io.at("sample.noise"), 0);
  runtime::SolverHistory history;
  int high_steps = 0;
  for (int k = 0; k < job.steps(); ++k) {
    EXPECT_EQ(job.timestep_at(k), io.at("sample.timesteps").data[size_t(k)]) << "step " << k;
    const runtime::Expert expert = *job.expert_at(k);
    const bool high = expert == runtime::Expert::high_noise;
    high_steps += high;
    EXPECT_EQ(high ? 1.0f : 0.0f, io.at("sample.expert").data[size_t(k)]) << "step " << k;
    const runtime::Guidance g = job.guidance_at(k);
    EXPECT_EQ(g.cfg, io.at("sample.guide_scale").data[size_t(k)]) << "step " << k;
    runtime::HostTensors inputs =
        denoiser->network_inputs(x, job.sigmas[size_t(k)], job.timesteps[size_t(k)], job.cond, g);
    inputs[std::string(runtime::kExpertInput)] = runtime::expert_input(expert);
    const HostTensor v = denoiser->velocity_from_output(call(inputs), x.shape, g);
    EXPECT_LT(max_abs_diff(v, batch_item(io.at(fmt::format("step.{}.velocity", k)), 0)), 1e-3) << "step " << k;
    runtime::wan_solver_step(*solver, job.sigmas, k, x, v, history);
    EXPECT_LT(max_abs_diff(x, batch_item(io.at(fmt::format("step.{}.latent", k)), 0)), 1e-3) << "step " << k;
  }
  EXPECT_EQ(high_steps, c.high_steps);
}

// wan22-tiny-a14b (../shared/testdata): Wan 2.2 WanT2V.generate, 8 steps, shift 12, boundary
// 0.875. wan22-tiny-i2v-a14b (tests/data, made by running Wan2.2's WanI2V.generate, see its
// README): in_dim 36 experts fed the image conditioning y (mask and image latent), 6 steps,
// shift 5, boundary 0.9, guide [3, 4].
INSTANTIATE_TEST_SUITE_P(
    Official, ExpertLoop,
    testing::Values(LoopCase{"t2v", a14b_files(), testdata("reference/wan22-tiny-a14b.io.safetensors"), 12.0, 6},
                    LoopCase{"i2v",
                             {project_testdata("wan22-tiny-i2v-a14b/high.safetensors"), std::nullopt,
                              project_testdata("wan22-tiny-i2v-a14b/config.json")},
                             project_testdata("wan22-tiny-i2v-a14b/io.safetensors"), 5.0, 3}),
    [](const auto& info) { return info.param.name; });

TEST(ImageToVideo, StandaloneForwardWithTheImageConditioning) {
  const models::OpenedModel m = models::open_model_files({project_testdata("wan22-tiny-i2v-a14b/high.safetensors"),
                                                          std::nullopt, project_testdata("wan22-tiny-i2v-a14b/config.json")});
  auto backend = runtime::make_cpu_backend({runtime::Precision::F32, 0});
  runtime::WeightStore weights(*backend, *m.network, m.find_weight());
  const auto io = models::read_host_tensors(project_testdata("wan22-tiny-i2v-a14b/io.safetensors"));
  runtime::HostTensors in{{"x", io.at("in.x")}, {"t", io.at("in.t")}, {"context", io.at("in.context")},
                          {"y", io.at("in.y")}, {std::string(runtime::kExpertInput), runtime::expert_input(runtime::Expert::high_noise)}};
  EXPECT_LT(max_abs_diff(models::local_network(*backend, *m.network, weights)(in), io.at("out")), 1e-4);
  in.erase("y");
  try {
    models::local_network(*backend, *m.network, weights)(in);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model input 'y'"), std::string::npos) << e.what();
  }
}

// Image-to-video from a picture: the conditioning y is WanI2V.generate's, 4 mask channels (as
// the official run's, stored in the case) and then the run's VAE's latent of the video whose
// first frame is the picture and the rest zero.
TEST(ImageToVideo, ConditioningFromAPictureIsTheOfficialMaskAndTheVaeLatent) {
  const std::string dir = temp_dir("i2v-png");
  std::vector<uint8_t> rgb(size_t(48 * 32 * 3));
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t((i * 37) % 251);
  media::write_png_rgb(dir + "/pic.png", rgb, 48, 32);
  const models::OpenedModel m = models::open_model_files({project_testdata("wan22-tiny-i2v-a14b/high.safetensors"),
                                                          std::nullopt, project_testdata("wan22-tiny-i2v-a14b/config.json")});
  launcher::PictureOptions pictures;
  pictures.vae = testdata("reference/wan21-vae-tiny.safetensors");
  pictures.vae_config = testdata("reference/wan21-vae-tiny.config.json");
  launcher::BackendOptions backend;
  backend.backend = "cpu";
  launcher::RunVae vae(pictures, backend, m.config());
  launcher::Job job;
  job.id = "png";
  job.cond = dir + "/cond.safetensors";
  const auto io = models::read_host_tensors(project_testdata("wan22-tiny-i2v-a14b/io.safetensors"));
  const HostTensor context = batch_item(io.at("in.context"), 0), negative = batch_item(io.at("in.context_neg"), 0);
  models::write_host_tensors(job.cond, {{"context", &context}, {"context_neg", &negative}}, {});
  job.image = dir + "/pic.png";
  job.frames = 9;
  job.seed = 3;
  const auto denoiser = models::make_denoiser(m.config());
  const runtime::SamplingJob prepared = launcher::prepare_job(job, m.config(), *denoiser, &vae);
  const HostTensor& y = prepared.cond.tensors.at("y");
  ASSERT_EQ(y.shape, (Shape{20, 3, 4, 6}));
  EXPECT_EQ(prepared.x.shape, (Shape{16, 3, 4, 6}));
  const HostTensor& mask = io.at("sample.mask");  // [1, 4, 3, 4, 6], the official run's
  EXPECT_EQ(max_abs_diff(HostTensor({4, 3, 4, 6}, std::vector<float>(y.data.begin(), y.data.begin() + 4 * 72)),
                         batch_item(mask, 0)),
            0);
  const HostTensor latent = vae.encode_image(*job.image, std::nullopt, std::nullopt, 9);
  EXPECT_EQ(max_abs_diff(HostTensor({16, 3, 4, 6}, std::vector<float>(y.data.begin() + 4 * 72, y.data.end())), latent), 0);
  // Without a frame count the video's length is unknown.
  job.frames.reset();
  EXPECT_THROW(launcher::prepare_job(job, m.config(), *denoiser, &vae), Error);
}

// The planner weighs both strategies for a two-expert release: with one 24 GB GPU, bf16
// experts that do not fit twice over and a one-frame job (little compute to hide streaming
// behind), loading one expert at a time wins; fp8 video jobs keep both (streaming hides behind
// their compute); four 80 GB GPUs neither stream nor swap. The plan records the choice, each
// expert's steps and the other strategy's prediction, and its JSON reads back the same.
launcher::JobPlan plan_a14b(const std::string& weights, const std::string& devices, int frames) {
  launcher::PlanRequest request;
  request.model = "wan2.2-t2v-a14b";
  request.weights = weights;
  request.job.width = 480;
  request.job.height = 320;
  request.job.frames = frames;
  request.devices.inventory = devices;
  return launcher::plan_job(request);
}

TEST(ExpertPlanning, ChoosesBetweenBothExpertsAndSwapping) {
  const launcher::JobPlan swap = plan_a14b("bf16", "1x rtx4090-24gb, host=64gb", 1);
  ASSERT_TRUE(swap.planned.plan.experts);
  const partition::ExpertPlan& e = *swap.planned.plan.experts;
  EXPECT_EQ(e.strategy, partition::ExpertStrategy::swap);
  EXPECT_GT(e.swap_seconds, 0);
  EXPECT_EQ(e.high_steps + e.low_steps, 40);
  EXPECT_EQ(e.high_steps, launcher::high_noise_steps(swap.config, 40));
  ASSERT_TRUE(e.alternative_job_seconds);
  EXPECT_GT(*e.alternative_job_seconds, *swap.planned.plan.predicted.job_seconds);
  // The swap plan's job time includes two loads of an expert.
  EXPECT_NEAR(*swap.planned.plan.predicted.job_seconds, 40 * swap.planned.plan.predicted.step_seconds + 2 * e.swap_seconds,
              1e-9);

  const launcher::JobPlan video = plan_a14b("fp8", "1x rtx4090-24gb, host=64gb", 81);
  EXPECT_EQ(video.planned.plan.experts->strategy, partition::ExpertStrategy::both);
  // On four 80 GB GPUs nothing streams and nothing swaps (both experts per GPU, or one expert
  // per GPU in phases: the same step, whichever the model ranks a hair ahead).
  const launcher::JobPlan big = plan_a14b("bf16", "4x h100-80gb", 81);
  EXPECT_NE(big.planned.plan.experts->strategy, partition::ExpertStrategy::swap);
  EXPECT_EQ(big.planned.plan.ranks[0].streamed_bytes(), 0u);

  const partition::Plan back = partition::plan_from_json(partition::to_json(swap.planned.plan));
  ASSERT_TRUE(back.experts);
  EXPECT_EQ(back.experts->strategy, partition::ExpertStrategy::swap);
  EXPECT_EQ(back.experts->high_steps, e.high_steps);
  EXPECT_DOUBLE_EQ(back.experts->swap_seconds, e.swap_seconds);
}

// Two RTX 4090s and an image-sized fp8 job: each GPU holds one expert whole, and jobs move
// from the high-noise GPU to the low-noise one (a job's time is one GPU's steps, nothing
// streams, nothing swaps); the throughput objective prefers a pipeline of both experts, whose
// two stages stay equally busy.
TEST(ExpertPlanning, PhasesOnDifferentRanks) {
  launcher::PlanRequest request;
  request.model = "wan2.2-t2v-a14b";
  request.weights = "fp8";
  request.job.width = 480;
  request.job.height = 320;
  request.job.frames = 1;
  request.devices.inventory = "2x rtx4090-24gb, host=64gb";
  const launcher::JobPlan latency = launcher::plan_job(request);
  const partition::Plan& plan = latency.planned.plan;
  ASSERT_TRUE(plan.experts);
  EXPECT_EQ(plan.experts->strategy, partition::ExpertStrategy::phases);
  ASSERT_EQ(plan.group_count(), 2);
  EXPECT_EQ(plan.ranks[0].expert, "high_noise");
  EXPECT_EQ(plan.ranks[1].expert, "low_noise");
  EXPECT_EQ(plan.ranks[0].streamed_bytes(), 0u);
  EXPECT_NEAR(*plan.predicted.job_seconds, 40 * plan.predicted.step_seconds, 1e-9);
  const partition::Plan back = partition::plan_from_json(partition::to_json(plan));
  EXPECT_EQ(back.ranks[1].expert, "low_noise");
  request.devices.objective = partition::Objective::throughput;
  EXPECT_NE(launcher::plan_job(request).planned.plan.experts->strategy, partition::ExpertStrategy::phases);
  // A plan in phases needs a group of each expert, and ranks name an expert only then.
  nlohmann::json bad = partition::to_json(plan);
  bad["ranks"][1]["expert"] = "high_noise";
  EXPECT_THROW(partition::plan_from_json(bad), Error);
  bad["ranks"][1]["expert"] = "low_noise";
  bad["experts"]["strategy"] = "both";
  EXPECT_THROW(partition::plan_from_json(bad), Error);
  // One process cannot run it.
  EXPECT_THROW(launcher::plan_for_ranks(plan, 1), Error);
}

}  // namespace
}  // namespace ditrun::test
