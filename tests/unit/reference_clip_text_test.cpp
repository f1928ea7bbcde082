// The CLIP text encoder against Stability-AI's sd3.5 CLIPTextModel (../shared/testdata
// reference clip-l-tiny; cross-checked there against openai's encode_text): the last hidden
// state, every layer, the penultimate layer with and without the final norm, the pooled row
// at the first end-of-text and its projection, within 1e-4 in f32; detection gives the
// sidecar's params.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "models/formats/checkpoint.h"
#include "models/pipeline/model_source.h"
#include "models/pipeline/tensor_files.h"
#include "models/text/clip_text_encoder.h"
#include "reference_case.h"
#include "runtime/backend/cpu_backend.h"
#include "test_paths.h"

namespace ditrun::models::text {
namespace {

TEST(ReferenceClipText, EveryOutputOfTheOfficialCode) {
  const std::string base = test::testdata("reference/clip-l-tiny");
  const ClipTextParams params = clip_text_params_from_json(read_json_file(base + ".config.json"), base);
  const formats::Checkpoint checkpoint(base + ".safetensors");
  const quant::WeightSet weights(checkpoint);
  const std::vector<NamedShape> shapes = named_shapes(weights);
  ASSERT_TRUE(looks_like_clip_text(shapes));
  EXPECT_EQ(detect_clip_text(shapes, base).num_layers, params.num_layers);
  EXPECT_EQ(detect_clip_text(shapes, base).intermediate_size, params.intermediate_size);

  const auto io = read_host_tensors(base + ".io.safetensors");
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

}  // namespace
}  // namespace ditrun::models::text
