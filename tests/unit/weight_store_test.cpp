// The streaming WeightStore on the CPU backend (budgeted device memory, a worker-thread copy
// stream): any placement gives bit-identical outputs, budgets hold, and misuse fails loudly.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>

#include "reference_case.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "runtime/exec/model_call.h"

namespace ditrun::test {
namespace {

using partition::Home;
using runtime::WeightStore;

// A one-rank plan for `rc`'s model: unit i streams when streamed(i, unit name).
partition::RankPlan rank_plan(const ReferenceCase& rc, const std::function<bool(size_t, const std::string&)>& streamed,
                              int depth = 2) {
  partition::RankPlan rank;
  rank.device = "cpu";
  const auto units = runtime::model_units(*rc.network);
  for (size_t i = 0; i < units.size(); ++i) {
    uint64_t bytes = 0;
    for (const auto& name : units[i].weights)
      if (const Weight* w = rc.source.weights->find(name)) bytes += w->stored_bytes();
    const bool s = streamed(i, units[i].name);
    rank.blocks.push_back({units[i].name, s ? Home::streamed : Home::resident, bytes});
    if (s) rank.slot_bytes = std::max(rank.slot_bytes, bytes);
  }
  rank.prefetch_depth = rank.slot_bytes > 0 ? depth : 0;
  return rank;
}

WeightStore::FindSource finder(const ReferenceCase& rc) {
  return [&rc](const std::string& n) { return rc.source.weights->find(n); };
}

bool bit_identical(const HostTensor& a, const HostTensor& b) {
  return a.shape == b.shape && std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(float)) == 0;
}

struct Outputs {
  HostTensor out;
  std::map<std::string, HostTensor> blocks;
};

Outputs run(ReferenceCase& rc, runtime::Backend& backend, WeightStore& store) {
  Outputs r;
  r.out = runtime::run_model(backend, *rc.network, store, reference_inputs(rc.io),
                             [&](const std::string& n, const HostTensor& t) { r.blocks[n] = t; });
  return r;
}

struct Placement {
  std::string label;
  std::function<bool(size_t, const std::string&)> streamed;
  int depth;
};

const std::vector<Placement>& placements() {
  static const std::vector<Placement> all = {
      {"every other unit streamed", [](size_t i, const std::string&) { return i % 2 == 1; }, 2},
      {"first half streamed", [](size_t i, const std::string&) { return i < 4; }, 2},
      {"all streamed, 2 slots", [](size_t, const std::string&) { return true; }, 2},
      {"all streamed, 3 slots", [](size_t, const std::string&) { return true; }, 3},
      {"only the epilogue streamed", [](size_t, const std::string& n) { return n == "epilogue"; }, 2},
  };
  return all;
}

class StreamedPlans : public testing::TestWithParam<std::string> {};

TEST_P(StreamedPlans, EveryPlacementIsBitIdenticalToAllResident) {
  const std::string name = GetParam();
  const std::string variant = name == "flux-tiny-dev-Q4_K" ? "Q4_K" : "";
  ReferenceCase rc(variant.empty() ? name : "flux-tiny-dev", variant);
  const Outputs resident = run(rc, *rc.backend, *rc.weights);
  for (const Placement& p : placements()) {
    SCOPED_TRACE(p.label);
    auto backend = runtime::make_cpu_backend();
    WeightStore store(*backend, *rc.network, finder(rc), rank_plan(rc, p.streamed, p.depth), 0);
    EXPECT_GT(store.streamed_bytes(), 0u);
    // Two calls: the second starts with copies the first one's tail issued (the cycle wraps).
    for (int call = 0; call < 2; ++call) {
      const Outputs streamed = run(rc, *backend, store);
      EXPECT_TRUE(bit_identical(streamed.out, resident.out)) << "call " << call;
      ASSERT_EQ(streamed.blocks.size(), resident.blocks.size());
      for (const auto& [block, value] : resident.blocks) EXPECT_TRUE(bit_identical(streamed.blocks.at(block), value)) << block;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, StreamedPlans, testing::Values("flux-tiny-dev", "flux-tiny-dev-Q4_K", "wan21-tiny-t2v"),
                         [](const auto& info) { return test_label(info.param); });

TEST(WeightStore, StreamsEachStreamedUnitOncePerCall) {
  ReferenceCase rc("flux-tiny-dev", "");
  auto backend = runtime::make_cpu_backend();
  const auto plan = rank_plan(rc, [](size_t i, const std::string&) { return i % 2 == 0; }, 2);
  size_t streamed_units = 0;
  for (const auto& b : plan.blocks) streamed_units += b.home == Home::streamed;
  WeightStore store(*backend, *rc.network, finder(rc), plan, 0);
  EXPECT_EQ(store.prefetch_depth(), 2);
  EXPECT_EQ(store.copies_issued(), 2u);  // the first two streamed units, before any call
  run(rc, *backend, store);
  // Each streamed unit once, plus the next call's first two already on their way.
  EXPECT_EQ(store.copies_issued(), streamed_units + 2);
  EXPECT_EQ(store.resident_bytes() + store.streamed_bytes(), rc.weights->resident_bytes());
}

TEST(WeightStore, DeviceMemoryStaysWithinTheBudgetWhileStreaming) {
  ReferenceCase rc("flux-tiny-dev", "");
  const auto plan = rank_plan(rc, [](size_t, const std::string&) { return true; }, 2);
  // What an unlimited run needs, for comparison: all weights resident.
  auto unlimited = runtime::make_cpu_backend();
  {
    WeightStore all(*unlimited, *rc.network, finder(rc));
    run(rc, *unlimited, all);
  }
  const uint64_t resident_peak = unlimited->memory_stats().peak_bytes;

  auto probe = runtime::make_cpu_backend();
  uint64_t streaming_peak = 0;
  {
    WeightStore store(*probe, *rc.network, finder(rc), plan, 0);
    run(rc, *probe, store);
    streaming_peak = probe->memory_stats().peak_bytes;
    // The resident weights are replaced by the slots; the activations are the same.
    EXPECT_EQ(streaming_peak, resident_peak - rc.weights->resident_bytes() + store.prefetch_depth() * store.slot_bytes());
    EXPECT_LT(streaming_peak, resident_peak);
    EXPECT_GE(store.pinned_bytes(), store.streamed_bytes());
  }
  // A budget of exactly that peak holds the run; the ledger would throw otherwise.
  auto budgeted = runtime::make_cpu_backend({runtime::Precision::F32, 0, streaming_peak});
  WeightStore store(*budgeted, *rc.network, finder(rc), plan, 0);
  EXPECT_NO_THROW(run(rc, *budgeted, store));
  EXPECT_LE(budgeted->memory_stats().peak_bytes, streaming_peak);
  EXPECT_EQ(budgeted->memory_stats().limit_bytes, streaming_peak);
}

TEST(WeightStore, ABudgetTooSmallFailsNamingIt) {
  ReferenceCase rc("flux-tiny-dev", "");
  auto backend = runtime::make_cpu_backend({runtime::Precision::F32, 0, 64 * 1024});
  try {
    WeightStore store(*backend, *rc.network, finder(rc));
    FAIL() << "a 64 KiB budget held the model";
  } catch (const Error& e) {

    EXPECT_NE(std::string(e.what()).find("of the 64 KiB budget"), std::string::npos) << e.what();
  }
}

TEST(WeightStore, PinnedPoolRespectsTheHostBudget) {
  ReferenceCase rc("flux-tiny-dev", "");
  auto backend = runtime::make_cpu_backend();
  const auto plan = rank_plan(rc, [](size_t, const std::string&) { return true; }, 2);
  try {
    WeightStore store(*backend, *rc.network, finder(rc), plan, 1024);
    FAIL() << "a 1 KiB host budget held the pinned pool";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pinned host pool"), std::string::npos) << e.what();
  }
  EXPECT_EQ(backend->memory_stats().peak_bytes, 0u) << "refused only after allocating";
}

TEST(WeightStore, RefusesPlansThatDoNotMatchTheModel) {
  ReferenceCase rc("flux-tiny-dev", "");
  auto backend = runtime::make_cpu_backend();
  auto plan = rank_plan(rc, [](size_t i, const std::string&) { return i == 1; }, 2);
  auto expect_error = [&](const partition::RankPlan& p, const std::string& fragment) {
    try {
      WeightStore store(*backend, *rc.network, finder(rc), p, 0);
      ADD_FAILURE() << "accepted a plan that should fail with '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  auto wrong_bytes = plan;
  wrong_bytes.blocks[1].bytes += 1;
  expect_error(wrong_bytes, "in the plan but");
  auto unknown = plan;
  unknown.blocks.push_back({"double_blocks.99", Home::resident, 0});
  expect_error(unknown, "'double_blocks.99' is not a unit of this model");
  auto one_slot = plan;
  one_slot.prefetch_depth = 1;
  expect_error(one_slot, "prefetch_depth is 1");
}

TEST(WeightStore, StreamedBlocksMustRunInPlanOrderAndOwnTheirWeights) {
  ReferenceCase rc("flux-tiny-dev", "");
  auto backend = runtime::make_cpu_backend();
  const auto plan = rank_plan(rc, [](size_t, const std::string&) { return true; }, 2);
  WeightStore store(*backend, *rc.network, finder(rc), plan, 0);
  const std::string second = plan.blocks[1].name;
  EXPECT_THROW(store.acquire(second), Error);  // the prologue comes first
  store.acquire("prologue");
  const std::string weight = runtime::model_units(*rc.network)[1].weights.front();
  try {
    store.find(weight);
    ADD_FAILURE() << "read a weight of an unacquired streamed block";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside that block"), std::string::npos) << e.what();
  }
  store.release("prologue");
  store.acquire(second);
  EXPECT_NE(store.find(weight), nullptr);
  store.release(second);
  // After a call that stopped half-way, the cycle restarts at the prologue.
  store.restart_cycle();
  EXPECT_NO_THROW(run(rc, *backend, store));
}

TEST(CpuStreams, CopiesRunOnTheCopyStreamAndEventsOrderThem) {
  auto backend = runtime::make_cpu_backend();
  const runtime::Stream copy = backend->create_stream();
  runtime::Buffer pinned = backend->allocate_pinned(1 << 20), device = backend->allocate_device(1 << 20);
  for (size_t i = 0; i < pinned.bytes; ++i) pinned.data[i] = uint8_t(i * 7);
  backend->copy_to_device({pinned.data, pinned.bytes}, device, 0, copy);
  const runtime::Event done = backend->record_event(copy);
  backend->wait_event(backend->compute_stream(), done);  // the compute stream (this thread) waits
  EXPECT_EQ(std::memcmp(pinned.data, device.data, pinned.bytes), 0);
  EXPECT_EQ(backend->memory_stats().in_use_bytes, 1u << 20);
  EXPECT_THROW(backend->copy_to_device({pinned.data, pinned.bytes}, device, 1, copy), Error);
  EXPECT_THROW(backend->synchronize(runtime::Stream{42}), Error);
}

}  // namespace
}  // namespace ditrun::test
