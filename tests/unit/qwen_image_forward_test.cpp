// Qwen-Image's transformer (models/qwen_image) against diffusers' QwenImageTransformer2DModel
// on qwen-image-tiny (../shared/testdata/reference): the reference sidecar accepted as it is,
// `out` and both streams after every block within 1e-4 with the text mask (item 1's prompt
// is padded; its padded text rows are not compared), `out.nomask` without it, and the RoPE
// tables of the official code within 2e-6.
#include <gtest/gtest.h>

#include <map>

#include "models/common/rope_table.h"
#include "models/qwen_image/qwen_image_model.h"
#include "reference_case.h"
#include "runtime/core/error.h"
#include "runtime/exec/model_call.h"
#include "runtime/sampling/schedule.h"

namespace ditrun::test {
namespace {

// max |a − b| over the rows of [B, L, C] tensors whose mask [B, L] is non-zero.
double masked_rows_diff(const HostTensor& a, const HostTensor& b, const HostTensor& mask) {
  EXPECT_EQ(a.shape, b.shape);
  const int64_t B = a.shape[0], L = a.shape[1], C = a.shape[2];
  double m = 0;
  for (int64_t i = 0; i < B * L; ++i)
    if (mask.data[size_t(i)] != 0)
      for (int64_t c = 0; c < C; ++c) m = std::max(m, double(std::fabs(a.data[size_t(i * C + c)] - b.data[size_t(i * C + c)])));
  return m;
}

TEST(QwenImageForward, SidecarIsTheReleasedConfigAtTinySize) {
  ReferenceCase rc("qwen-image-tiny", "");
  ASSERT_EQ(rc.source.config.family, arch::Family::QwenImage);
  const auto& p = arch::qwen_image_params(rc.source.config);
  EXPECT_EQ(p.num_layers, 2);
  EXPECT_EQ(p.joint_attention_dim, 48);
  EXPECT_EQ(p.axes_dims_rope, (std::vector<int64_t>{8, 12, 12}));
  EXPECT_EQ(rc.source.config.sampling.steps, 3);
  EXPECT_EQ(rc.source.config.sampling.cfg, 4.0);  // true_cfg_scale
  EXPECT_EQ(rc.source.config.sampling.shift, "qwen-dynamic");
}

TEST(QwenImageForward, MatchesOutputAndEveryBlockUnderTheTextMask) {
  ReferenceCase rc("qwen-image-tiny", "");
  const runtime::HostTensors in = reference_inputs(rc.io);
  std::map<std::string, HostTensor> blocks;
  const HostTensor out = runtime::run_model(*rc.backend, *rc.network, *rc.weights, in,
                                            [&](const std::string& n, const HostTensor& t) { blocks[n] = t; });
  EXPECT_LT(max_abs_diff(out, rc.io.at("out")), 1e-4);
  // Without the mask the padded keys join the attention: the released code's behaviour.
  EXPECT_GT(max_abs_diff(out, rc.io.at("out.nomask")), 1e-2);
  int compared = 0;
  for (const auto& [name, ref] : rc.io) {
    if (!name.starts_with("transformer_blocks.")) continue;
    ASSERT_TRUE(blocks.count(name)) << "no block reported " << name;
    const double diff = name.ends_with(".out.txt") ? masked_rows_diff(blocks.at(name), ref, rc.io.at("in.txt_mask"))
                                                   : max_abs_diff(blocks.at(name), ref);
    EXPECT_LT(diff, 1e-4) << name;
    ++compared;
  }
  EXPECT_EQ(compared, 4);
}

TEST(QwenImageForward, WithoutTheMaskMatchesTheReleasedCode) {
  ReferenceCase rc("qwen-image-tiny", "");
  runtime::HostTensors in = reference_inputs(rc.io);
  in.erase("txt_mask");
  const HostTensor out = runtime::run_model(*rc.backend, *rc.network, *rc.weights, in);
  EXPECT_LT(max_abs_diff(out, rc.io.at("out.nomask")), 1e-4);
}

TEST(QwenImageForward, RopeTablesAreTheOfficialOnes) {
  ReferenceCase rc("qwen-image-tiny", "");
  const HostTensor& img = rc.io.at("rope.img");  // [12, 16, 2]
  const HostTensor& txt = rc.io.at("rope.txt");  // [7, 16, 2]
  const int64_t Li = img.shape[0], Lt = txt.shape[0], D = 2 * img.shape[1];
  const std::vector<int64_t> axes{8, 12, 12};
  const std::vector<float> table = models::rope_table_f32(models::qwen_image::qwen_rope_positions(1, 3, 4, Lt), axes, 10000);
  ASSERT_EQ(int64_t(table.size()), (Lt + Li) * D);
  double diff = 0;
  for (int64_t i = 0; i < (Lt + Li) * D; ++i) {
    const float want = i < Lt * D ? txt.data[size_t(i)] : img.data[size_t(i - Lt * D)];
    diff = std::max(diff, double(std::fabs(table[size_t(i)] - want)));
  }
  EXPECT_LT(diff, 2e-6);
}

// The released scheduler config's schedule for 3 steps over 12 image tokens, as the pipeline's
// f32 numpy computes it, and the timestep the pipeline gives the model: bit for bit.
TEST(QwenImageForward, ScheduleIsThePipelines) {
  ReferenceCase rc("qwen-image-tiny", "");
  const std::vector<double> sigmas = runtime::flow_sigmas(3, runtime::Shift::qwen_dynamic(), 12);
  const HostTensor& want = rc.io.at("sample.sigmas");
  ASSERT_EQ(sigmas.size(), want.data.size());
  for (size_t i = 0; i < sigmas.size(); ++i) EXPECT_EQ(float(sigmas[i]), want.data[i]) << i;
  EXPECT_NEAR(runtime::qwen_dynamic_mu(12), 0.48770161290322583, 1e-15);
  // One step has nothing to stretch: [1, 0].
  EXPECT_EQ(runtime::flow_sigmas(1, runtime::Shift::qwen_dynamic(), 4096), (std::vector<double>{1.0, 0.0}));
}

TEST(QwenImageForward, OddGridsCentreAsDiffusersDoes) {
  // Rows of a 3-row grid sit at −2, −1, 0 (r − ⌈h/2⌉); ComfyUI would use −1, 0, 1.
  const std::vector<float> pos = models::qwen_image::qwen_rope_positions(1, 3, 2, 1);
  ASSERT_EQ(pos.size(), size_t(7 * 3));
  EXPECT_EQ(pos[0], 1);  // the text token after max(⌊3/2⌋, ⌊2/2⌋) = 1
  EXPECT_EQ(pos[3 + 1], -2);
  EXPECT_EQ(pos[3 + 2], -1);
  EXPECT_EQ(pos[3 * 6 + 1], 0);
  EXPECT_EQ(pos[3 * 6 + 2], 0);
}

TEST(QwenImageForward, BadInputsAreNamed) {
  ReferenceCase rc("qwen-image-tiny", "");
  const auto error_of = [&](const runtime::HostTensors& in) -> std::string {
    try {
      runtime::run_model(*rc.backend, *rc.network, *rc.weights, in);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  runtime::HostTensors in = reference_inputs(rc.io);
  in["txt_mask"].data[0] = 0;  // padding before real tokens
  EXPECT_NE(error_of(in).find("model input 'txt_mask': item 0 has a real token at 1 after padding at 0"),
            std::string::npos)
      << error_of(in);
  in = reference_inputs(rc.io);
  in["img_shapes"].data[2] = 5;
  EXPECT_NE(error_of(in).find("model input 'img_shapes'"), std::string::npos) << error_of(in);
  in = reference_inputs(rc.io);
  in["txt"] = HostTensor(Shape{2, 7, 40});
  EXPECT_NE(error_of(in).find("model input 'txt'"), std::string::npos) << error_of(in);
}

}  // namespace
}  // namespace ditrun::test
