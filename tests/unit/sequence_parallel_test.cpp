// One model call shared by several ranks (threads on local channels) gives the one-rank
// output: sequence parallelism over 2, 3 and 4 ranks (Ulysses where the heads divide, ring
// attention where they do not, both combined, a ring degree asked for, padding where the
// tokens do not divide), CFG parallelism over the two halves of a Wan batch, and both at
// once; on the Flux and Wan reference cases of ../shared/testdata (their inputs are batches
// of two; Qwen-Image's with a padded prompt under its text mask).
#include <gtest/gtest.h>

#include <cstdio>

#include "reference_case.h"
#include "runtime/backend/cpu_backend.h"
#include "shared_call.h"
#include "runtime/core/error.h"
#include "runtime/exec/model_call.h"
#include "runtime/exec/stage.h"
#include "transport/local_channel.h"
#include "transport/rank_group.h"

namespace ditrun::test {
namespace {

struct Layout {
  std::string model;
  int sp = 1, cfg = 1, ring = 0;  // ring 0: chosen by the head count
  friend void PrintTo(const Layout& l, std::ostream* os) {
    *os << l.model << " sp" << l.sp << " cfg" << l.cfg << " ring" << l.ring;
  }
};

std::string label(const testing::TestParamInfo<Layout>& info) {
  return test_label(info.param.model + "_sp" + std::to_string(info.param.sp) + "_cfg" + std::to_string(info.param.cfg) +
                    (info.param.ring ? "_ring" + std::to_string(info.param.ring) : ""));
}

HostTensor shared_call(const Layout& l, const runtime::HostTensors& inputs) {
  const SharedCallResult call = shared_reference_call(l.model, l.sp, l.cfg, l.ring, inputs, [] { return runtime::make_cpu_backend(); });
  for (size_t r = 0; r < call.errors.size(); ++r) EXPECT_EQ(call.errors[r], "") << "rank " << r;
  return call.output;
}

class SharedCall : public testing::TestWithParam<Layout> {};

TEST_P(SharedCall, GivesTheOneRankOutput) {
  const Layout& l = GetParam();
  ReferenceCase rc(l.model, "");
  const runtime::HostTensors inputs = reference_inputs(rc.io);
  const HostTensor one = runtime::run_model(*rc.backend, *rc.network, *rc.weights, inputs);
  const HostTensor shared = shared_call(l, inputs);
  ASSERT_EQ(shared.shape, one.shape);
  // Not bit for bit: attention sums over keys in another order once the tokens are split, and
  // a GEMM over half the rows may block its sums differently (measured ~3e-7 for CFG alone).
  const double diff = max_abs_diff(shared, one);
  std::printf("[ shared   ] %s sp %d cfg %d ring %d: max |shared - one rank| = %.2e\n", l.model.c_str(), l.sp, l.cfg,
              l.ring, diff);
  EXPECT_LT(diff, 1e-5);
}

// Flux: 4 heads (Ulysses at 2 and 4, ring at 3, a ring asked for at 2 and inside 4), a text
// prefix. Wan: 2 heads (Ulysses at 2, ring at 3, Ulysses 2 x ring 2 at 4), the batch of two as
// cond and uncond. Qwen-Image: 2 heads as Wan, and a text prefix under a text mask (item 1's
// prompt is padded), which Ulysses, ring attention and the CFG split all carry. SD3.5: 2 heads
// (Large style), and Medium's one head with its image-only attn2 (all ring).
INSTANTIATE_TEST_SUITE_P(Layouts, SharedCall,
                         testing::Values(Layout{"flux-tiny-dev", 2, 1}, Layout{"flux-tiny-dev", 3, 1},
                                         Layout{"flux-tiny-dev", 4, 1}, Layout{"flux-tiny-dev", 2, 1, 2},
                                         Layout{"flux-tiny-dev", 4, 1, 2}, Layout{"flux-tiny-dev", 1, 2},
                                         Layout{"wan21-tiny-t2v", 2, 1}, Layout{"wan21-tiny-t2v", 3, 1},
                                         Layout{"wan21-tiny-t2v", 4, 1}, Layout{"wan21-tiny-t2v", 1, 2},
                                         Layout{"wan21-tiny-t2v", 2, 2}, Layout{"wan21-tiny-t2v", 2, 2, 2},
                                         Layout{"qwen-image-tiny", 2, 1}, Layout{"qwen-image-tiny", 3, 1},
                                         Layout{"qwen-image-tiny", 4, 1}, Layout{"qwen-image-tiny", 1, 2},
                                         Layout{"qwen-image-tiny", 2, 2}, Layout{"sd35-tiny", 2, 1},
                                         Layout{"sd35-tiny", 3, 1}, Layout{"sd35-tiny", 1, 2},
                                         Layout{"sd35-medium-tiny", 2, 1}, Layout{"sd35-medium-tiny", 3, 1}),
                         label);

TEST(SharedCall, MoreRanksThanTokensIsRefused) {
  ReferenceCase rc("flux-tiny-dev", "");
  const runtime::HostTensors inputs = reference_inputs(rc.io);
  const int64_t tokens = inputs.at("img").shape[1];
  const int ranks = int(tokens) + 1;
  auto channels = transport::make_local_channels(ranks);
  std::vector<int> members(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) members[size_t(r)] = r;
  transport::RankGroup group(*channels[0], members, 31);
  runtime::SequenceParallel sequence(group);
  runtime::JobSplit split;
  split.sequence = &sequence;
  try {
    runtime::run_stage(*rc.backend, *rc.network, *rc.weights, {0, rc.network->blocks().size() + 2}, &inputs, {}, {},
                       split);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sequence parallel over " + std::to_string(ranks) + " ranks needs at least"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace ditrun::test
