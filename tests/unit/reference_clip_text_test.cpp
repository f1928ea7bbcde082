// The CLIP text encoder against Stability-AI's sd3.5 CLIPTextModel: CLIP-L (../shared/testdata
// reference clip-l-tiny; cross-checked there against openai's encode_text) and CLIP-G (its exact
// GELU: tests/data/clip-g-tiny, made from the same official code as SD3.5's SDXLClipG configures
// it): the last hidden state, every layer, the penultimate layer with and without the final
// norm, the pooled row at the first end-of-text and its projection, within 1e-4 in f32;
// detection gives the sidecar's params.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "models/formats/checkpoint.h"
#include "models/pipeline/model_source.h"
#include "models/pipeline/tensor_files.h"
#include "models/text/clip_text_encoder.h"
#include "models/text/text_encoder_config.h"
#include "reference_case.h"
#include "runtime/backend/cpu_backend.h"
#include "test_paths.h"

namespace ditrun::models::text {
namespace {

struct ClipCase {
  std::string name, model, config, io;
  friend void PrintTo(const ClipCase& c, std::ostream* os) { *os << c.name; }
};

class ReferenceClipText : public testing::TestWithParam<ClipCase> {};

TEST_P(ReferenceClipText, EveryOutputOfTheOfficialCode) {
  const ClipCase& c = GetParam();
  const std::string base = c.model;
  const ClipTextParams params = clip_text_params_from_json(read_json_file(c.config), c.config);
  const formats::Checkpoint checkpoint(c.model);
  const quant::WeightSet weights(checkpoint);
  const std::vector<NamedShape> shapes = named_shapes(weights);
  ASSERT_TRUE(looks_like_clip_text(shapes));
  if (params.hidden_size % 64 == 0) {  // the shapes tell the heads only at the released 64-wide heads
    EXPECT_EQ(detect_clip_text(shapes, base).num_layers, params.num_layers);
    EXPECT_EQ(detect_clip_text(shapes, base).intermediate_size, params.intermediate_size);
  }

  const auto io = read_host_tensors(c.io);
  auto backend = runtime::make_cpu_backend({});
  ClipTextEncoder encoder(params, *backend, weights, base);
  std::map<std::string, HostTensor> layers;
  const ClipTextOutputs out =
      encoder.encode(io.at("in.ids"), [&](const std::string& n, const HostTensor& t) { layers[n] = t; });
  EXPECT_LT(test::max_abs_diff(out.last, io.at("out")), 1e-4);
  EXPECT_LT(test::max_abs_diff(out.penultimate, io.at("out.penultimate")), 1e-4);
  EXPECT_LT(test::max_abs_diff(out.penultimate_normed, io.at("out.penultimate.ln")), 1e-4);
  EXPECT_LT(test::max_abs_diff(out.pooled, io.at("pooled")), 1e-4);
  EXPECT_LT(test::max_abs_diff(out.pooled_projected, io.at("pooled.projected")), 1e-4);
  for (int64_t n = 0; n < params.num_layers; ++n) {
    const std::string name = fmt::format("layers.{}.out", n);
    EXPECT_LT(test::max_abs_diff(layers.at(name), io.at(name)), 1e-4) << name;
  }
  const HostTensor& index = io.at("pooled.index");
  for (size_t i = 0; i < out.pooled_index.size(); ++i) EXPECT_EQ(out.pooled_index[i], int64_t(index.data[i]));
}

INSTANTIATE_TEST_SUITE_P(
    Official, ReferenceClipText,
    testing::Values(ClipCase{"clip_l_tiny", test::testdata("reference/clip-l-tiny.safetensors"),
                             test::testdata("reference/clip-l-tiny.config.json"),
                             test::testdata("reference/clip-l-tiny.io.safetensors")},
                    ClipCase{"clip_g_tiny", test::project_testdata("clip-g-tiny/model.safetensors"),
                             test::project_testdata("clip-g-tiny/config.json"),
                             test::project_testdata("clip-g-tiny/io.safetensors")}),
    [](const auto& info) { return info.param.name; });

TEST(ClipText, TheReleasedCLIPGIsDetectedWithItsGelu) {
  // Shapes alone: the 1280-wide tower with 32 layers is OpenCLIP's bigG (exact GELU).
  const TextEncoderConfig g = text_encoder_preset("clip-g");
  const ClipTextParams detected = detect_clip_text(text_encoder_layout(g), "clip_g.safetensors");
  EXPECT_EQ(detected, g.clip);
  EXPECT_EQ(detect_clip_text(text_encoder_layout(text_encoder_preset("clip-l")), "clip_l.safetensors").hidden_act,
            "quick_gelu");
}

}  // namespace
}  // namespace ditrun::models::text
