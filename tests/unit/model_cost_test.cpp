// The planner's view of a model (models/pipeline/model_cost.h): a preset's bytes equal what
// `ditrun synth` writes, unit by unit; Flux dev and Wan 14B have the sizes the releases have;
// FLOPs and activations grow with tokens; the token counts follow the Denoiser; and the
// activation estimate bounds what a forward on the CPU backend really allocates.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "models/arch/detect.h"
#include "models/arch/layout.h"
#include "models/pipeline/denoiser.h"
#include "models/pipeline/model_cost.h"
#include "models/pipeline/network.h"
#include "models/quant/converted_writer.h"
#include "models/synth/synthetic_model.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/sampling/noise.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

using testing::HasSubstr;

partition::ModelCost preset_cost(const std::string& preset, const std::string& weights, models::JobSettings job = {}) {
  const arch::ModelConfig config = arch::preset(preset, "test");
  const auto network = models::make_network(config);
  return models::model_cost(config, *network, models::converted_weights(config, quant::ConversionTarget::parse(weights)),
                            models::job_geometry(config, job), models::kGpuActivationBytes);
}

const partition::BlockCost& unit(const partition::ModelCost& cost, const std::string& name) {
  for (const auto& b : cost.blocks)
    if (b.name == name) return b;
  throw std::runtime_error("no unit " + name);
}

struct SynthCase {
  std::string preset, weights;
};

std::string case_name(const testing::TestParamInfo<SynthCase>& info) {
  std::string s = info.param.preset + "_" + info.param.weights;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

class PresetBytes : public testing::TestWithParam<SynthCase> {};

TEST_P(PresetBytes, EqualWhatSynthWritesUnitByUnit) {
  const SynthCase& c = GetParam();
  const quant::ConversionTarget target = quant::ConversionTarget::parse(c.weights);
  synth::SynthRequest request;
  request.config = arch::preset(c.preset, "test");
  request.target = target;
  request.out_path = temp_dir("model-cost") + "/model" + (target.writes_gguf() ? ".gguf" : ".safetensors");
  const quant::WriteStats written = synth::write_synthetic_model(request);

  const models::ModelSource source = models::open_model(request.out_path, std::nullopt);
  const auto network = models::make_network(source.config);
  const models::JobGeometry job = models::job_geometry(source.config, {});
  const partition::ModelCost from_file = models::checkpoint_cost(source, *network, job, models::kGpuActivationBytes);
  const partition::ModelCost from_preset =
      models::model_cost(request.config, *network, models::converted_weights(request.config, target), job,
                         models::kGpuActivationBytes);

  ASSERT_EQ(from_file.blocks.size(), from_preset.blocks.size());
  for (size_t i = 0; i < from_file.blocks.size(); ++i) {
    const auto &f = from_file.blocks[i], &p = from_preset.blocks[i];
    EXPECT_EQ(f.name, p.name);
    EXPECT_EQ(f.weight_bytes, p.weight_bytes) << f.name;
    EXPECT_EQ(f.weight_class, p.weight_class) << f.name;
    EXPECT_EQ(f.flops, p.flops) << f.name;
  }
  // Every byte the file holds belongs to a unit the network reads.
  uint64_t stored = 0;
  for (const Weight& w : source.weights->weights()) stored += w.stored_bytes();
  EXPECT_EQ(from_preset.weight_bytes(), stored);
  EXPECT_EQ(from_preset.weight_bytes(), written.bytes);
}

INSTANTIATE_TEST_SUITE_P(TinyPresets, PresetBytes,
                         testing::Values(SynthCase{"flux-tiny", "bf16"}, SynthCase{"flux-tiny", "f32"},
                                         SynthCase{"flux-tiny", "fp8"}, SynthCase{"flux-tiny", "fp8-scaled"},
                                         SynthCase{"flux-tiny", "fp8-block"}, SynthCase{"flux-tiny", "q8_0"},
                                         SynthCase{"flux-tiny", "q4_K"}, SynthCase{"wan-tiny", "bf16"},
                                         SynthCase{"wan-tiny", "fp8-scaled"}, SynthCase{"wan-tiny", "q8_0"},
                                         SynthCase{"wan-tiny", "q5_0"}),
                         case_name);

TEST(ModelCost, FluxDevHasItsReleaseSizeAndUnits) {
  const arch::ModelConfig config = arch::preset("flux-dev", "test");
  const partition::ModelCost cost = preset_cost("flux-dev", "bf16");
  ASSERT_EQ(cost.blocks.size(), 1u + 19 + 38 + 1);
  EXPECT_EQ(cost.blocks.front().name, "prologue");
  EXPECT_EQ(cost.blocks[1].name, "double_blocks.0");
  EXPECT_EQ(cost.blocks[19].name, "double_blocks.18");
  EXPECT_EQ(cost.blocks[20].name, "single_blocks.0");
  EXPECT_EQ(cost.blocks[57].name, "single_blocks.37");
  EXPECT_EQ(cost.blocks.back().name, "epilogue");
  EXPECT_EQ(cost.weight_bytes(), 2 * uint64_t(arch::parameter_count(config)));
  EXPECT_NEAR(double(cost.weight_bytes()), 23.8e9, 0.1e9);
  for (const auto& b : cost.blocks) EXPECT_EQ(b.weight_class, "bf16") << b.name;
  // One image per call (embedded guidance), 28 steps; 1024x1024 = 4096 + 512 tokens.
  EXPECT_EQ(cost.micro_batches, 1);
  EXPECT_EQ(cost.steps, 28);
  const double L = 4608, h = 3072;
  EXPECT_DOUBLE_EQ(unit(cost, "double_blocks.0").attention_flops, 4 * L * L * h);
  // The state: x [L, h], vec [h], pe [L, 128] in bf16.
  EXPECT_EQ(unit(cost, "single_blocks.0").activation_bytes, uint64_t(2 * (L * h + h + L * 128)));
}

TEST(ModelCost, WeightClassFollowsMostOfTheGemmBytes) {
  const partition::ModelCost fp8 = preset_cost("flux-dev", "fp8");
  EXPECT_EQ(unit(fp8, "prologue").weight_class, "bf16");  // fp8 targets quantize inside blocks only
  EXPECT_EQ(unit(fp8, "double_blocks.3").weight_class, "fp8");
  EXPECT_EQ(unit(fp8, "single_blocks.3").weight_class, "fp8");
  EXPECT_NEAR(double(fp8.weight_bytes()), 11.9e9, 0.15e9);
  const partition::ModelCost q8 = preset_cost("flux-dev", "q8_0");
  EXPECT_EQ(unit(q8, "double_blocks.0").weight_class, "gguf");
  EXPECT_EQ(unit(q8, "epilogue").weight_class, "bf16");  // final_layer. stays unquantized
  EXPECT_LT(q8.weight_bytes(), fp8.weight_bytes() * 1.1);
  const partition::ModelCost q4 = preset_cost("flux-dev", "q4_K");
  EXPECT_EQ(unit(q4, "single_blocks.0").weight_class, "gguf");
  EXPECT_LT(q4.weight_bytes(), q8.weight_bytes() * 0.6);
  EXPECT_EQ(models::weight_class(DType::F16), "bf16");
  EXPECT_EQ(models::weight_class(DType::F8_E5M2), "fp8");
  EXPECT_EQ(models::weight_class(DType::Q6_K), "gguf");
}

TEST(ModelCost, Wan14BRunsCfgAsABatchOfTwo) {
  const partition::ModelCost cost = preset_cost("wan2.1-t2v-14b", "bf16");
  ASSERT_EQ(cost.blocks.size(), 42u);
  EXPECT_EQ(cost.micro_batches, 1);  // both halves cross stages in one message
  EXPECT_EQ(cost.steps, 50);
  EXPECT_NEAR(double(cost.weight_bytes()), 28.6e9, 0.2e9);
  // 832x480, 81 frames: 21·30·52 = 32760 tokens per item, two items; 512 text tokens.
  const double L = 32760, Lc = 512, d = 5120;
  EXPECT_DOUBLE_EQ(unit(cost, "blocks.0").attention_flops, 2 * (4 * L * L * d + 4 * L * Lc * d));
  EXPECT_EQ(unit(cost, "blocks.0").activation_bytes, uint64_t(2 * (2 * (L * d + 7 * d + Lc * d) + L * 128)));
  const partition::ModelCost no_cfg = preset_cost("wan2.1-t2v-14b", "bf16", {.cfg = 1.0});
  EXPECT_EQ(no_cfg.micro_batches, 1);
  EXPECT_DOUBLE_EQ(unit(no_cfg, "blocks.0").flops * 2, unit(cost, "blocks.0").flops);
}

TEST(ModelCost, FlopsAndActivationsGrowWithTokens) {
  for (const char* preset : {"flux-dev", "wan2.1-t2v-14b"}) {
    partition::ModelCost previous;
    for (int64_t side : {256, 512, 768, 1024, 1536, 2048}) {
      const bool wan = std::string(preset).starts_with("wan");
      const partition::ModelCost cost = preset_cost(preset, "bf16", {.width = side, .height = wan ? side / 2 : side});
      if (!previous.blocks.empty()) {
        double total = 0, previous_total = 0;
        for (size_t i = 0; i < cost.blocks.size(); ++i) {
          const auto &b = cost.blocks[i], &p = previous.blocks[i];
          EXPECT_GE(b.flops, p.flops) << preset << " " << b.name << " at " << side;
          EXPECT_GE(b.attention_flops, p.attention_flops) << preset << " " << b.name;
          EXPECT_GT(b.activation_bytes, p.activation_bytes) << preset << " " << b.name;
          EXPECT_EQ(b.weight_bytes, p.weight_bytes) << preset << " " << b.name;
          total += b.flops + b.attention_flops;
          previous_total += p.flops + p.attention_flops;
        }
        EXPECT_GT(total, previous_total) << preset << " at " << side;
        EXPECT_GT(cost.step_activation_bytes, previous.step_activation_bytes) << preset << " at " << side;
      }
      previous = cost;
    }
  }
}

TEST(ModelCost, JobGeometryRefusesWhatTheDenoiserRefuses) {
  const arch::ModelConfig flux = arch::preset("flux-dev", "test"), wan = arch::preset("wan2.1-t2v-14b", "test");
  auto error = [](const arch::ModelConfig& c, models::JobSettings s) {
    try {
      models::job_geometry(c, s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_THAT(error(flux, {.cfg = 4.0}), HasSubstr("cfg must be 1"));
  EXPECT_THAT(error(flux, {.frames = 5}), HasSubstr("frames must be 1"));
  EXPECT_THAT(error(wan, {.width = 830}), HasSubstr("multiples of 16"));
  EXPECT_THAT(error(wan, {.frames = 80}), HasSubstr("4k+1 frames"));
  EXPECT_THAT(error(wan, {.text_tokens = 600}), HasSubstr("text_len 512"));
  const arch::ModelConfig qwen = arch::preset("qwen-image", "test");
  EXPECT_THAT(error(qwen, {.width = 1000}), HasSubstr("multiples of 16 pixels"));
  EXPECT_THAT(error(qwen, {.frames = 5}), HasSubstr("frames must be 1"));
  // Qwen-Image at 1328² (its official square size): 83² patches; true CFG, a batch of two.
  const models::JobGeometry qg = models::job_geometry(qwen, {.width = 1328, .height = 1328});
  EXPECT_EQ(qg.tokens.image, 83 * 83);
  EXPECT_EQ(qg.batch, 2);
  // TI2V-5B's Wan 2.2 VAE strides 16 pixels: 1280x704x121 (its official size) is 31x44x80
  // latents, 27280 tokens; 720 rows do not make whole patches.
  const arch::ModelConfig ti2v = arch::preset("wan2.2-ti2v-5b", "test");
  EXPECT_EQ(models::make_denoiser(ti2v)->latent_shape(1280, 704, 121), (Shape{48, 31, 44, 80}));
  EXPECT_EQ(models::job_geometry(ti2v, {.width = 1280, .height = 704, .frames = 121}).tokens.image, 27280);
  EXPECT_THAT(error(ti2v, {.width = 1280, .height = 720}), HasSubstr("multiples of 32 pixels"));
  const arch::ModelConfig sd3 = arch::preset("sd3.5-large", "test");
  EXPECT_THAT(error(sd3, {.frames = 5}), HasSubstr("frames must be 1"));
  // SD3.5 at 1024² with CFG: 64² patches, CLIP's 77 + T5's 77 context tokens (sd3_infer's
  // tokenizers), a batch of two.
  const models::JobGeometry g = models::job_geometry(sd3, {});
  EXPECT_EQ(g.tokens.image, 64 * 64);
  EXPECT_EQ(g.tokens.text, 154);
  EXPECT_EQ(g.batch, 2);
  EXPECT_EQ(models::job_geometry(arch::preset("flux-schnell", "test"), {}).tokens.text, 256);
  EXPECT_EQ(models::job_geometry(flux, {.width = 1000, .height = 600}).tokens.image, 63 * 38);
}

// A tiny model synthesized on the fly, opened like `ditrun run` opens it, on the CPU backend.
struct TinyRun {
  explicit TinyRun(const std::string& preset) : TinyRun(arch::preset(preset, "test")) {}
  explicit TinyRun(const arch::ModelConfig& config) {
    synth::SynthRequest request;
    request.config = config;
    request.target = quant::ConversionTarget::parse("bf16");
    request.out_path = temp_dir("model-cost-run") + "/model.safetensors";
    synth::write_synthetic_model(request);
    source = models::open_model(request.out_path, std::nullopt);
    network = models::make_network(source.config);
    backend = runtime::make_cpu_backend({runtime::Precision::F32, 2, 0});
    store = std::make_unique<runtime::WeightStore>(*backend, *network,
                                                   [this](const std::string& n) { return source.weights->find(n); });
    denoiser = models::make_denoiser(source.config);
  }

  // Activation bytes one velocity call allocates at its peak, on top of the resident weights.
  uint64_t measured_peak(const HostTensor& x, const runtime::Conditioning& cond, const runtime::Guidance& g) {
    backend->reset_peak_memory();
    const uint64_t before = backend->memory_stats().in_use_bytes;
    denoiser->velocity(x, 0.5, cond, g, models::local_network(*backend, *network, *store));
    return backend->memory_stats().peak_bytes - before;
  }

  models::ModelSource source;
  std::unique_ptr<runtime::Model> network;
  std::unique_ptr<runtime::Backend> backend;
  std::unique_ptr<runtime::WeightStore> store;
  std::unique_ptr<models::Denoiser> denoiser;
};

TEST(ModelCost, ActivationEstimateBoundsTheCpuBackendsPeak) {
  TinyRun flux("flux-tiny");
  const arch::FluxParams& fp = arch::flux_params(flux.source.config);
  for (auto [w, h, text] : {std::tuple{64, 64, 16}, {256, 128, 7}, {96, 320, 40}, {32, 32, 1}}) {
    const models::JobGeometry job = models::job_geometry(flux.source.config, {.width = w, .height = h, .text_tokens = text});
    const Shape latent = flux.denoiser->latent_shape(w, h, 1);
    EXPECT_EQ(job.tokens.image, flux.denoiser->image_tokens(latent));
    const HostTensor txt = runtime::seeded_noise(1, {text, fp.context_in_dim}), y = runtime::seeded_noise(2, {fp.vec_in_dim});
    const runtime::Conditioning cond{{{"txt", txt}, {"y", y}}, "cond"};
    const uint64_t measured = flux.measured_peak(runtime::seeded_noise(3, latent), cond, {3.5, 1});
    const uint64_t estimate = uint64_t(flux.network->activation_elements(job.tokens, job.batch)) * sizeof(float);
    EXPECT_LE(measured, estimate) << w << "x" << h << " text " << text;
    EXPECT_LE(double(estimate), 1.5 * double(measured)) << w << "x" << h << " text " << text;
  }

  TinyRun wan("wan-tiny");
  const arch::WanParams& wp = arch::wan_params(wan.source.config);
  for (auto [w, h, frames, cfg] : {std::tuple{64, 48, 5, 5.0}, {32, 32, 1, 1.0}, {128, 64, 9, 3.0}}) {
    const models::JobGeometry job = models::job_geometry(wan.source.config, {.width = w, .height = h, .frames = frames, .cfg = cfg});
    const Shape latent = wan.denoiser->latent_shape(w, h, frames);
    EXPECT_EQ(job.tokens.image, wan.denoiser->image_tokens(latent));
    EXPECT_EQ(job.batch, wan.denoiser->calls_per_step({0, cfg}));
    const HostTensor ctx = runtime::seeded_noise(1, {5, wp.text_dim}), neg = runtime::seeded_noise(2, {3, wp.text_dim});
    const runtime::Conditioning cond{{{"context", ctx}, {"context_neg", neg}}, "cond"};
    const uint64_t measured = wan.measured_peak(runtime::seeded_noise(3, latent), cond, {0, cfg});
    const uint64_t estimate = uint64_t(wan.network->activation_elements(job.tokens, job.batch)) * sizeof(float);
    EXPECT_LE(measured, estimate) << w << "x" << h << "x" << frames;
    EXPECT_LE(double(estimate), 1.5 * double(measured)) << w << "x" << h << "x" << frames;
  }

  // Qwen-Image at qwen-image-tiny's size; prompts of two lengths put the text mask's re-laid
  // keys and values on top of the block.
  arch::ModelConfig qwen_config = arch::preset("qwen-image", "test");
  qwen_config.params = arch::QwenImageParams{.num_layers = 2, .attention_head_dim = 32, .num_attention_heads = 2,
                                             .joint_attention_dim = 48, .axes_dims_rope = {8, 12, 12}};
  TinyRun qwen(qwen_config);
  for (auto [w, h, text, cfg] : {std::tuple{64, 64, 16, 4.0}, {128, 96, 7, 4.0}, {32, 32, 40, 1.0}}) {
    const models::JobGeometry job =
        models::job_geometry(qwen.source.config, {.width = w, .height = h, .text_tokens = text, .cfg = cfg});
    const Shape latent = qwen.denoiser->latent_shape(w, h, 1);
    EXPECT_EQ(job.tokens.image, qwen.denoiser->image_tokens(latent));
    EXPECT_EQ(job.batch, qwen.denoiser->calls_per_step({0, cfg}));
    const HostTensor txt = runtime::seeded_noise(1, {text, 48}), neg = runtime::seeded_noise(2, {text / 2 + 1, 48});
    const runtime::Conditioning cond{{{"txt", txt}, {"txt_neg", neg}}, "cond"};
    const uint64_t measured = qwen.measured_peak(runtime::seeded_noise(3, latent), cond, {0, cfg});
    const uint64_t estimate = uint64_t(qwen.network->activation_elements(job.tokens, job.batch)) * sizeof(float);
    EXPECT_LE(measured, estimate) << w << "x" << h << " text " << text;
    EXPECT_LE(double(estimate), 1.5 * double(measured)) << w << "x" << h << " text " << text;
  }
}

}  // namespace
}  // namespace ditrun::test
