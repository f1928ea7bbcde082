// One model call against the official implementations: every case of
// ../shared/testdata/reference, bf16 weights and each GGUF variant, must reproduce `out` and
// every recorded per-block output within 1e-4 on the f32 CPU path (wan22-tiny-ti2v: Wan 2.2's
// model.py with per-token timesteps, the first frame's tokens at t = 0).
#include <gtest/gtest.h>

#include <map>

#include "reference_case.h"
#include "runtime/exec/model_call.h"

namespace ditrun::test {
namespace {

struct Case {
  std::string name, variant;
  friend void PrintTo(const Case& c, std::ostream* os) { *os << c.name << (c.variant.empty() ? "" : "-" + c.variant); }
};

std::string case_label(const testing::TestParamInfo<Case>& info) {
  return test_label(info.param.name + (info.param.variant.empty() ? "" : "_" + info.param.variant));
}

class ReferenceForward : public testing::TestWithParam<Case> {};

TEST_P(ReferenceForward, MatchesOutputAndEveryBlock) {
  ReferenceCase rc(GetParam().name, GetParam().variant);
  std::map<std::string, HostTensor> blocks;
  const HostTensor out = runtime::run_model(*rc.backend, *rc.network, *rc.weights, reference_inputs(rc.io),
                                            [&](const std::string& n, const HostTensor& t) { blocks[n] = t; });
  EXPECT_LT(max_abs_diff(out, rc.io.at("out")), 1e-4);
  for (const auto& [name, ref] : rc.io) {
    if (name.starts_with("in.") || name.starts_with("sample.") || name.starts_with("step.") || name == "out") continue;
    ASSERT_TRUE(blocks.count(name)) << "no block reported " << name;
    EXPECT_LT(max_abs_diff(blocks.at(name), ref), 1e-4) << name;
  }
  // The bf16 cases record every block (the GGUF io files only `out`): all were compared.
  if (GetParam().variant.empty()) {
    for (const auto& block : rc.network->blocks()) {
      EXPECT_TRUE(rc.io.lower_bound(block->name() + ".out") != rc.io.end() &&
                  rc.io.lower_bound(block->name() + ".out")->first.starts_with(block->name() + ".out"))
          << block->name() << " has no recorded output";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCases, ReferenceForward,
                         testing::Values(Case{"flux-tiny-dev", ""}, Case{"flux-tiny-dev", "Q8_0"},
                                         Case{"flux-tiny-dev", "Q4_K"}, Case{"flux-tiny-schnell", ""},
                                         Case{"wan21-tiny-t2v", ""}, Case{"wan21-tiny-t2v", "Q5_0"},
                                         Case{"wan22-tiny-ti2v", ""}),
                         case_label);

}  // namespace
}  // namespace ditrun::test
