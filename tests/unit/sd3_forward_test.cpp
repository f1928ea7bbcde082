// SD3.5's MMDiT-X (models/sd3) against Stability-AI sd3.5 `mmditx.py` on sd35-tiny (Large
// style, depth 2) and sd35-medium-tiny (Medium's x_block attn2 in block 0), architecture
// detected from the tensors as the official loader does (and as the cases' sd3.5-mmditx
// sidecars say): `out` and every block's recorded image and context streams within 1e-4,
// batch 2.
#include <gtest/gtest.h>

#include <map>

#include "models/pipeline/model_source.h"
#include "models/pipeline/network.h"
#include "models/pipeline/tensor_files.h"
#include "reference_case.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/exec/model_call.h"
#include "runtime/exec/weight_store.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

class SD3Forward : public testing::TestWithParam<std::string> {};

TEST_P(SD3Forward, MatchesOutputAndEveryBlock) {
  const std::string base = testdata("reference/" + GetParam());
  // The reference sidecar (architecture sd3.5-mmditx, MMDiTX's own arguments) is accepted and
  // says what detection from the tensors says.
  const models::ModelSource source = models::open_model(base + ".safetensors", base + ".config.json");
  ASSERT_EQ(source.config.family, arch::Family::SD3);
  EXPECT_EQ(source.config.params, models::open_model(base + ".safetensors", std::nullopt).config.params);
  EXPECT_EQ(source.config.sampling.steps, 3);
  EXPECT_EQ(source.config.sampling.cfg, 4.5);
  const auto network = models::make_network(source.config);
  models::check_weights_present(*network, *source.weights);
  auto backend = runtime::make_cpu_backend({runtime::Precision::F32, 0});
  runtime::WeightStore weights(*backend, *network, [&](const std::string& n) { return source.weights->find(n); });
  const auto io = models::read_host_tensors(base + ".io.safetensors");
  runtime::HostTensors in;
  for (const char* name : {"x", "t", "y", "context"}) in[name] = io.at(std::string("in.") + name);
  std::map<std::string, HostTensor> blocks;
  const HostTensor out = runtime::run_model(*backend, *network, weights, in,
                                            [&](const std::string& n, const HostTensor& t) { blocks[n] = t; });
  EXPECT_LT(max_abs_diff(out, io.at("out")), 1e-4);
  int compared = 0;
  for (const auto& [name, ref] : io) {
    if (!name.starts_with("joint_blocks.")) continue;
    ASSERT_TRUE(blocks.count(name)) << "no block reported " << name;
    EXPECT_LT(max_abs_diff(blocks.at(name), ref), 1e-4) << name;
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

INSTANTIATE_TEST_SUITE_P(Official, SD3Forward, testing::Values("sd35-tiny", "sd35-medium-tiny"),
                         [](const auto& info) { return test_label(info.param); });

}  // namespace
}  // namespace ditrun::test
