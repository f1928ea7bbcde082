// The VAEs against the official code (../shared/testdata/reference/*-vae-tiny, flux-ae-tiny):
// decode and encode, with every recorded intermediate, within 1e-4 on the f32 CPU path, and
// within a bf16 tolerance in bf16 compute (6e-2 max abs on outputs of std ~0.5 and |max| up to 2.6;
// measured 0.044 (Wan 2.1) and 0.047 (Wan 2.2) on decode, the deepest path).
#include <gtest/gtest.h>

#include <map>

#include "reference_case.h"
#include "runtime/backend/cpu_backend.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

VaeCaseRun run_case(const std::string& name, runtime::Precision precision) {
  auto backend = runtime::make_cpu_backend({.precision = precision});
  return run_vae_case(name, *backend);
}

class ReferenceVae : public testing::TestWithParam<std::string> {};

TEST_P(ReferenceVae, DecodeAndEncodeMatchTheOfficialCode) {
  const VaeCaseRun run = run_case(GetParam(), runtime::Precision::F32);
  int compared = 0;
  for (const auto& [name, ref] : run.io) {
    if (name.starts_with("in.")) continue;
    ASSERT_TRUE(run.outputs.count(name)) << "no output or intermediate reported for " << name;
    EXPECT_LT(max_abs_diff(run.outputs.at(name), ref), 1e-4) << name;
    ++compared;
  }
  EXPECT_GE(compared, 8) << "the io file records the outputs and at least 5 intermediates";
  // Frame by frame through the causal cache, as the official decode runs.
  EXPECT_LT(max_abs_diff(run.outputs.at("decode.chunked"), run.io.at("decode.out")), 1e-4);
}

TEST_P(ReferenceVae, Bf16ComputeStaysWithinTolerance) {
  const VaeCaseRun run = run_case(GetParam(), runtime::Precision::BF16);
  for (const char* name : {"decode.out", "encode.mean"})
    EXPECT_LT(max_abs_diff(run.outputs.at(name), run.io.at(name)), 6e-2) << name;
}

INSTANTIATE_TEST_SUITE_P(AllCases, ReferenceVae, testing::Values("flux-ae-tiny", "wan21-vae-tiny", "wan22-vae-tiny"),
                         [](const auto& info) { return test_label(info.param); });

}  // namespace
}  // namespace ditrun::test
