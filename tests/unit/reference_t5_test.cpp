// The T5 v1.1 and umT5 encoders against Wan's official T5Encoder (../shared/testdata/reference
// t5-tiny, umt5-tiny): the output and every block's residual stream within 1e-4 in f32, with
// the mask (rows at padded positions not compared: Wan drops them) and without (every row:
// Flux consumes them); the relative-position buckets exactly; detection from the names and
// shapes gives the sidecar's params.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "models/formats/checkpoint.h"
#include "models/pipeline/model_source.h"
#include "models/pipeline/tensor_files.h"
#include "models/quant/converted_writer.h"
#include "models/text/t5_encoder.h"
#include "models/text/text_encoder_config.h"
#include "runtime/backend/cpu_backend.h"
#include "test_paths.h"

namespace ditrun::models::text {
namespace {

// max |a − b| over the first `rows[b]` rows of each item of [B, L, C] tensors.
double max_diff_rows(const HostTensor& a, const HostTensor& b, const std::vector<int64_t>& rows) {
  EXPECT_EQ(a.shape, b.shape);
  if (a.shape != b.shape) return INFINITY;
  const int64_t l = a.shape[1], c = a.shape[2];
  double worst = 0;
  for (int64_t item = 0; item < a.shape[0]; ++item)
    for (int64_t r = 0; r < rows[size_t(item)]; ++r)
      for (int64_t j = 0; j < c; ++j) {
        const size_t i = size_t((item * l + r) * c + j);
        worst = std::max(worst, std::fabs(double(a.data[i]) - b.data[i]));
      }
  return worst;
}

class ReferenceT5 : public testing::TestWithParam<std::string> {};

TEST_P(ReferenceT5, MaskedAndUnmaskedOutputsAndEveryBlock) {
  const std::string base = test::testdata("reference/" + GetParam());
  const T5Params params = t5_params_from_json(read_json_file(base + ".config.json"), base);
  const formats::Checkpoint checkpoint(base + ".safetensors");
  const quant::WeightSet weights(checkpoint);
  const std::vector<NamedShape> shapes = named_shapes(weights);
  ASSERT_TRUE(looks_like_t5(shapes));
  T5Params detected = detect_t5(shapes, base);
  detected.max_distance = params.max_distance;  // not in the shapes: every release uses 128
  EXPECT_EQ(detected, params);

  const auto io = read_host_tensors(base + ".io.safetensors");
  const HostTensor& ids = io.at("in.ids");
  const int64_t b = ids.shape[0], l = ids.shape[1];
  std::vector<int64_t> lengths(size_t(b), 0), all(size_t(b), l);
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < l; ++j) lengths[size_t(i)] += int64_t(io.at("in.mask").data[size_t(i * l + j)]);

  const HostTensor& buckets = io.at("relpos.bucket");
  int64_t wrong = 0;
  for (int64_t i = 0; i < l; ++i)
    for (int64_t j = 0; j < l; ++j)
      wrong += t5_bucket(i, j, params.num_buckets, params.max_distance) != int64_t(buckets.data[size_t(i * l + j)]);
  EXPECT_EQ(wrong, 0) << "relative-position buckets";

  auto backend = runtime::make_cpu_backend({});
  T5Encoder encoder(params, *backend, weights, base);
  for (const bool masked : {true, false}) {
    std::map<std::string, HostTensor> blocks;
    const HostTensor out = encoder.encode(ids, masked ? lengths : std::vector<int64_t>{},
                                          [&](const std::string& n, const HostTensor& t) { blocks[n] = t; });
    const std::string suffix = masked ? "" : ".nomask";
    const std::vector<int64_t>& rows = masked ? lengths : all;
    EXPECT_LT(max_diff_rows(out, io.at("out" + suffix), rows), 1e-4) << "out" << suffix;
    for (int64_t n = 0; n < params.num_layers; ++n) {
      const std::string name = fmt::format("blocks.{}.out{}", n, suffix);
      EXPECT_LT(max_diff_rows(blocks.at(fmt::format("blocks.{}.out", n)), io.at(name), rows), 1e-4) << name;
    }
  }
}

// Wan's conditioning runs the real tokens alone, unmasked (prompt_conditioner.h): its rows
// must equal the official masked output's rows at the real positions. Streaming the blocks
// (one on the backend at a time) changes nothing.
TEST_P(ReferenceT5, TrimmedRunEqualsMaskedRowsAndStreamingChangesNothing) {
  const std::string base = test::testdata("reference/" + GetParam());
  const T5Params params = t5_params_from_json(read_json_file(base + ".config.json"), base);
  const formats::Checkpoint checkpoint(base + ".safetensors");
  const quant::WeightSet weights(checkpoint);
  const auto io = read_host_tensors(base + ".io.safetensors");
  const HostTensor& ids = io.at("in.ids");
  const HostTensor& want = io.at("out");
  const int64_t l = ids.shape[1], c = want.shape[2];
  auto backend = runtime::make_cpu_backend({});
  T5Encoder resident(params, *backend, weights, base), streamed(params, *backend, weights, base);
  streamed.set_streamed(true);
  for (int64_t item = 0; item < ids.shape[0]; ++item) {
    int64_t length = 0;
    for (int64_t j = 0; j < l; ++j) length += io.at("in.mask").data[size_t(item * l + j)] != 0.0f;
    HostTensor real(Shape{1, length});
    std::copy_n(ids.data.begin() + item * l, length, real.data.begin());
    const HostTensor out = resident.encode(real, {});
    ASSERT_EQ(out.shape, (Shape{1, length, c}));
    double worst = 0;
    for (int64_t i = 0; i < length * c; ++i)
      worst = std::max(worst, std::fabs(double(out.data[size_t(i)]) - want.data[size_t(item * l * c + i)]));
    EXPECT_LT(worst, 1e-4) << "item " << item << " (" << length << " tokens)";
    EXPECT_EQ(streamed.encode(real, {}).data, out.data) << "streamed";
  }
}

// The same weights under llama.cpp's names in a GGUF file (as the t5-v1_1-xxl-encoder-*.gguf
// files users have) and under Wan's own names (its umt5-xxl checkpoint's) give the official
// output, and detection reads them.
TEST_P(ReferenceT5, LlamaCppAndWanNames) {
  const std::string base = test::testdata("reference/" + GetParam());
  const T5Params params = t5_params_from_json(read_json_file(base + ".config.json"), base);
  const formats::Checkpoint checkpoint(base + ".safetensors");
  const quant::WeightSet weights(checkpoint);
  const auto io = read_host_tensors(base + ".io.safetensors");
  for (const auto& [naming, file] : {std::pair{T5Naming::LlamaCpp, ".gguf"}, std::pair{T5Naming::Wan, ".safetensors"}}) {
    std::vector<quant::SourceTensor> tensors;
    for (const Weight& w : weights.weights()) {
      quant::SourceTensor t;
      t.name = t5_name_as(w.name, naming, params.shared_pos).value();
      t.shape = w.shape;
      t.source = w.storage;
      t.fill = [&w](std::span<float> out) { w.dequantize(out); };
      tensors.push_back(std::move(t));
    }
    const std::string path = test::temp_dir("t5-names") + "/" + GetParam() + file;
    quant::write_converted_model(path, quant::ConversionTarget::parse("f32"), std::nullopt, tensors,
                                 {"t5encoder", GetParam(), {}, {}});
    const formats::Checkpoint renamed(path);
    const quant::WeightSet renamed_weights(renamed);
    const std::vector<NamedShape> shapes = named_shapes(renamed_weights);
    ASSERT_EQ(t5_naming_of(shapes), naming) << path;
    T5Params detected = detect_t5(shapes, path);
    detected.max_distance = params.max_distance;
    EXPECT_EQ(detected, params) << to_string(naming);
    auto backend = runtime::make_cpu_backend({});
    T5Encoder encoder(params, *backend, renamed_weights, path);
    const HostTensor out = encoder.encode(io.at("in.ids"), {});
    EXPECT_LT(max_diff_rows(out, io.at("out.nomask"), std::vector<int64_t>(size_t(out.shape[0]), out.shape[1])), 1e-4)
        << to_string(naming);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ReferenceT5, testing::Values("t5-tiny", "umt5-tiny"), [](const auto& info) {
  std::string s = info.param;
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
});

}  // namespace
}  // namespace ditrun::models::text
