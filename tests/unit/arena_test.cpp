// The device arena's bookkeeping (runtime/memory): best-fit allocation with coalescing,
// failures that name the request and the arena's state, reproducible offsets, and the
// layout a plan asks for.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "runtime/core/error.h"
#include "runtime/memory/arena_allocator.h"
#include "runtime/memory/arena_layout.h"

namespace ditrun::runtime {
namespace {

auto named(const char* what) {
  return [what] { return std::string(what); };
}

TEST(ArenaAllocator, AlignsCoalescesAndReusesBestFit) {
  ArenaAllocator arena(4096, 256);
  const uint64_t a = arena.allocate(100, named("a"));
  const uint64_t b = arena.allocate(256, named("b"));
  const uint64_t c = arena.allocate(1, named("c"));
  EXPECT_EQ(a, 0u);
  EXPECT_EQ(b, 256u);
  EXPECT_EQ(c, 512u);
  EXPECT_EQ(arena.stats().in_use_bytes, 768u);
  arena.release(b);
  // A 256-byte hole at 256 and 3328 bytes at the end: a 200-byte request takes the hole.
  EXPECT_EQ(arena.allocate(200, named("d")), 256u);
  arena.release(a);
  arena.release(256);
  arena.release(c);
  const ArenaStats s = arena.stats();
  EXPECT_EQ(s.in_use_bytes, 0u);
  EXPECT_EQ(s.largest_free_bytes, 4096u) << "free ranges did not coalesce";
  EXPECT_EQ(s.peak_bytes, 768u);
  EXPECT_EQ(arena.allocate(4096, named("all")), 0u);
}

TEST(ArenaAllocator, ZeroBytesStillGetsItsOwnRange) {
  ArenaAllocator arena(1024, 256);
  const uint64_t a = arena.allocate(0, named("empty"));
  const uint64_t b = arena.allocate(0, named("empty"));
  EXPECT_NE(a, b);
}

TEST(ArenaAllocator, FailureNamesTheRequestAndTheFragmentation) {
  ArenaAllocator arena(4 << 20, 256);
  const uint64_t first = arena.allocate(1 << 20, named("x"));
  arena.allocate(1 << 20, named("y"));
  arena.allocate(1 << 20, named("z"));
  arena.release(first);  // 2 MiB free in all, but at most 1 MiB in one range
  try {
    arena.allocate(3 << 19, named("activation [1, 4608, 3072]"));
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("activation [1, 4608, 3072]"), std::string::npos) << m;
    EXPECT_NE(m.find("1.5 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("largest free range is 1 MiB"), std::string::npos) << m;
  }
  EXPECT_THROW(arena.release(12345), Error);
}

TEST(ArenaAllocator, SameCallsGiveSameOffsets) {
  auto replay = [] {
    ArenaAllocator arena(64 << 20, 256);
    std::mt19937 rng(3);
    std::vector<uint64_t> live, offsets;
    for (int i = 0; i < 2000; ++i) {
      if (!live.empty() && rng() % 3 == 0) {
        const size_t j = rng() % live.size();
        arena.release(live[j]);
        live.erase(live.begin() + long(j));
      } else {
        live.push_back(arena.allocate(rng() % (1 << 16), named("t")));
        offsets.push_back(live.back());
      }
    }
    return offsets;
  };
  EXPECT_EQ(replay(), replay());
}

TEST(ArenaAllocator, RandomWorkloadNeverOverlaps) {
  ArenaAllocator arena(32 << 20, 256);
  std::mt19937 rng(11);
  std::vector<std::pair<uint64_t, uint64_t>> live;  // offset, bytes
  for (int i = 0; i < 5000; ++i) {
    if (!live.empty() && rng() % 2 == 0) {
      const size_t j = rng() % live.size();
      arena.release(live[j].first);
      live.erase(live.begin() + long(j));
      continue;
    }
    const uint64_t bytes = 1 + rng() % (1 << 18);
    try {
      live.emplace_back(arena.allocate(bytes, named("t")), bytes);
    } catch (const Error&) {
      continue;  // full: fine, as long as what is live never overlaps
    }
    std::vector<std::pair<uint64_t, uint64_t>> sorted = live;
    std::sort(sorted.begin(), sorted.end());
    for (size_t k = 1; k < sorted.size(); ++k) ASSERT_LE(sorted[k - 1].first + sorted[k - 1].second, sorted[k].first);
    ASSERT_LE(sorted.back().first + sorted.back().second, 32u << 20);
  }
}

TEST(ArenaLayout, SumsThePlansShareWithSlackAndWorkspace) {
  ArenaRequest r;
  r.resident_bytes = 10ull << 30;
  r.prefetch_depth = 2;
  r.slot_bytes = 300ull << 20;
  r.activation_bytes = 2ull << 30;
  r.workspace.gemm_bytes = 32ull << 20;
  r.workspace.dequantized_weight_bytes = 132ull << 20;
  const ArenaLayout l = layout_arena(r);
  EXPECT_EQ(l.slots_bytes, 600ull << 20);
  EXPECT_EQ(l.activation_bytes, (2ull << 30) + activation_slack(2ull << 30));
  EXPECT_EQ(l.workspace_bytes, 164ull << 20);
  EXPECT_GE(l.total_bytes, l.resident_bytes + l.slots_bytes + l.activation_bytes + l.workspace_bytes);
  EXPECT_LT(l.total_bytes, l.resident_bytes + l.slots_bytes + l.activation_bytes + l.workspace_bytes + (2 << 20));
  EXPECT_EQ(l.total_bytes % (2 << 20), 0u);
  EXPECT_NE(l.describe().find("2 slots x 300 MiB"), std::string::npos) << l.describe();
}

TEST(ArenaLayout, WeightDeviceBytesRoundEachPart) {
  EXPECT_EQ(weight_device_bytes(1000, 0), 1024u);
  EXPECT_EQ(weight_device_bytes(1024, 3072), 1024u + 12288u);
  EXPECT_EQ(weight_device_bytes(0, 0), 256u);
}

}  // namespace
}  // namespace ditrun::runtime
