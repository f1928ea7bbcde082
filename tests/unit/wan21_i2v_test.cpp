// Wan 2.1 image-to-video (model_type i2v: the CLIP image branch, img_emb and the blocks'
// k_img/v_img cross-attention, plus the 20-channel conditioning y) against
// tests/data/wan21-tiny-i2v, made by running Wan2.1's WanI2V.generate and model.py (its
// README says how): one forward reproduces `out`, the embedded context and every block within
// 1e-4, and the whole UniPC loop (5 steps, shift 5, guide 5) every step's latent within 1e-3.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>

#include "models/pipeline/denoiser.h"
#include "models/pipeline/model_files.h"
#include "models/pipeline/tensor_files.h"
#include "reference_case.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/exec/model_call.h"
#include "runtime/exec/weight_store.h"
#include "runtime/sampling/wan_solvers.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

struct I2vCase {
  models::OpenedModel model = models::open_model_files(
      {project_testdata("wan21-tiny-i2v/model.safetensors"), std::nullopt, project_testdata("wan21-tiny-i2v/config.json")});
  std::unique_ptr<runtime::Backend> backend = runtime::make_cpu_backend({runtime::Precision::F32, 0});
  runtime::WeightStore weights{*backend, *model.network, model.find_weight()};
  runtime::HostTensors io = models::read_host_tensors(project_testdata("wan21-tiny-i2v/io.safetensors"));
};

TEST(Wan21ImageToVideo, ForwardMatchesOutputAndEveryBlock) {
  I2vCase c;
  runtime::HostTensors in;
  for (const char* name : {"x", "t", "context", "y", "clip_fea"}) in[name] = c.io.at(std::string("in.") + name);
  std::map<std::string, HostTensor> blocks;
  const HostTensor out = runtime::run_model(*c.backend, *c.model.network, c.weights, in,
                                            [&](const std::string& n, const HostTensor& t) { blocks[n] = t; });
  EXPECT_LT(max_abs_diff(out, c.io.at("out")), 1e-4);
  for (const auto& block : c.model.network->blocks())
    EXPECT_LT(max_abs_diff(blocks.at(block->name() + ".out"), c.io.at(block->name() + ".out")), 1e-4) << block->name();
  // Without the image's CLIP features the model says which input it needs.
  in.erase("clip_fea");
  try {
    runtime::run_model(*c.backend, *c.model.network, c.weights, in);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model input 'clip_fea'"), std::string::npos) << e.what();
  }
}

TEST(Wan21ImageToVideo, WholeLoopReproducesEveryStep) {
  I2vCase c;
  const auto denoiser = models::make_denoiser(c.model.config());
  const auto call = models::local_network(*c.backend, *c.model.network, c.weights);
  const int steps = int(c.io.at("sample.timesteps").numel());
  const runtime::WanSchedule schedule = runtime::wan_schedule(runtime::WanSolver::unipc, steps, 5.0);
  runtime::Conditioning cond{{{"context", batch_item(c.io.at("in.context"), 0)},
                              {"context_neg", batch_item(c.io.at("in.context_neg"), 0)},
                              {"y", batch_item(c.io.at("in.y"), 0)},
                              {"clip_fea", batch_item(c.io.at("in.clip_fea"), 0)}},
                             "wan21-tiny-i2v"};
  const runtime::Guidance g{0.0, 5.0};
  denoiser->check_conditioning(cond, g);
  HostTensor x = batch_item(c.io.at("sample.noise"), 0);
  runtime::SolverHistory history;
  for (int k = 0; k < steps; ++k) {
    EXPECT_EQ(schedule.timesteps[size_t(k)], c.io.at("sample.timesteps").data[size_t(k)]) << "step " << k;
    const HostTensor v = denoiser->velocity_from_output(
        call(denoiser->network_inputs(x, schedule.sigmas[size_t(k)], schedule.timesteps[size_t(k)], cond, g)), x.shape, g);
    runtime::wan_solver_step(runtime::WanSolver::unipc, schedule.sigmas, k, x, v, history);
    EXPECT_LT(max_abs_diff(x, batch_item(c.io.at(fmt::format("step.{}.latent", k)), 0)), 1e-3) << "step " << k;
  }
}

}  // namespace
}  // namespace ditrun::test
