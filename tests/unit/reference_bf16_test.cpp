// The bf16 compute mode against the official f32 outputs: every value rounded to bfloat16
// (8 bits of mantissa) after every op, f32 accumulation. Documented tolerance: 0.08 absolute
// on outputs of std ~1 (measured worst 0.046, docs/architecture.md). The mode must also
// really round: it differs from the f32 path by far more than f32 noise.
#include <gtest/gtest.h>

#include <map>

#include "reference_case.h"
#include "runtime/exec/model_call.h"

namespace ditrun::test {
namespace {

constexpr double kBf16Tolerance = 0.08;

class ReferenceBf16 : public testing::TestWithParam<std::string> {};

TEST_P(ReferenceBf16, WithinDocumentedTolerance) {
  ReferenceCase bf16(GetParam(), "", runtime::Precision::BF16);
  ReferenceCase f32(GetParam(), "", runtime::Precision::F32);
  const runtime::HostTensors in = reference_inputs(bf16.io);
  std::map<std::string, HostTensor> blocks;
  const HostTensor out = runtime::run_model(*bf16.backend, *bf16.network, *bf16.weights, in,
                                            [&](const std::string& n, const HostTensor& t) { blocks[n] = t; });
  const double err = max_abs_diff(out, bf16.io.at("out"));
  EXPECT_LT(err, kBf16Tolerance);
  for (const auto& [name, t] : blocks) EXPECT_LT(max_abs_diff(t, bf16.io.at(name)), kBf16Tolerance) << name;
  const HostTensor out32 = runtime::run_model(*f32.backend, *f32.network, *f32.weights, in);
  EXPECT_GT(max_abs_diff(out, out32), 1e-3) << "bf16 mode computes like f32";
}

INSTANTIATE_TEST_SUITE_P(AllCases, ReferenceBf16, testing::Values("flux-tiny-dev", "flux-tiny-schnell", "wan21-tiny-t2v"),
                         [](const auto& info) { return test_label(info.param); });

}  // namespace
}  // namespace ditrun::test
