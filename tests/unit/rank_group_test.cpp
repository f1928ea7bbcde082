// Collectives over a group of ranks (ranks as threads on local channels): all-to-all,
// all-gather and gather give every member the right parts in member order, a group may leave
// ranks out, protocol messages on another tag stay where they are, and bad groups are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <thread>

#include "runtime/core/error.h"
#include "transport/local_channel.h"
#include "transport/rank_group.h"

namespace ditrun::transport {
namespace {

Bytes word(int v) {
  Bytes out(sizeof v);
  std::memcpy(out.data(), &v, sizeof v);
  return out;
}
int word(const Bytes& b) {
  int v = -1;
  EXPECT_EQ(b.size(), sizeof v);
  if (b.size() == sizeof v) std::memcpy(&v, b.data(), sizeof v);
  return v;
}

// Runs body(rank, channel) on `ranks` threads; returns each rank's error ("" when none).
std::vector<std::string> on_ranks(int ranks, const std::function<void(int, Channel&)>& body) {
  auto channels = make_local_channels(ranks);
  std::vector<std::string> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      try {
        body(r, *channels[size_t(r)]);
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

TEST(RankGroup, AllToAllAllGatherAndGatherOverASubsetInMemberOrder) {
  const auto errors = on_ranks(5, [](int rank, Channel& channel) {
    if (rank == 0) {  // not a member: its protocol message to rank 2 must reach rank 2 untouched
      channel.send(2, 7, word(1234));
      return;
    }
    RankGroup group(channel, {4, 2, 1, 3}, 11);
    std::vector<Bytes> to;
    for (int j = 0; j < group.size(); ++j) to.push_back(word(100 * rank + group.member(j)));
    for (int round = 0; round < 3; ++round) {  // consecutive collectives on one tag stay apart
      const std::vector<Bytes> from = group.all_to_all(to);
      for (int i = 0; i < group.size(); ++i) EXPECT_EQ(word(from[size_t(i)]), 100 * group.member(i) + rank);
      const std::vector<Bytes> all = group.all_gather(word(rank * 10 + round));
      for (int i = 0; i < group.size(); ++i) EXPECT_EQ(word(all[size_t(i)]), group.member(i) * 10 + round);
    }
    const std::vector<Bytes> gathered = group.gather(word(rank), 1);
    if (group.index() == 1) {
      ASSERT_EQ(gathered.size(), 4u);
      for (int i = 0; i < 4; ++i) EXPECT_EQ(word(gathered[size_t(i)]), group.member(i));
    } else {
      EXPECT_TRUE(gathered.empty());
    }
    // Around the ring 4 -> 2 -> 1 -> 3 -> 4: each member gets its predecessor's word.
    const int before = group.member((group.index() + 3) % 4);
    EXPECT_EQ(word(group.shift(word(rank * 7))), before * 7);
    if (rank == 2) EXPECT_EQ(word(channel.recv(0, 7).bytes), 1234);
  });
  for (size_t r = 0; r < errors.size(); ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

TEST(RankGroup, BadGroupsAreRefusedWithTheReason) {
  auto channels = make_local_channels(3);
  Channel& c = *channels[1];
  const auto error_of = [&](std::vector<int> members, int tag) -> std::string {
    try {
      RankGroup g(c, std::move(members), tag);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_THAT(error_of({}, 5), testing::HasSubstr("no members"));
  EXPECT_THAT(error_of({1, 1}, 5), testing::HasSubstr("listed twice"));
  EXPECT_THAT(error_of({1, 3}, 5), testing::HasSubstr("rank 3 is not a rank"));
  EXPECT_THAT(error_of({0, 2}, 5), testing::HasSubstr("rank 1 is not a member"));
  EXPECT_THAT(error_of({1}, -2), testing::HasSubstr("tag -2"));
  RankGroup alone(c, {1}, 5);
  EXPECT_EQ(word(alone.all_gather(word(9)).at(0)), 9);
  EXPECT_THAT([&] { alone.all_to_all({}); }, testing::ThrowsMessage<Error>(testing::HasSubstr("0 parts for a group of 1")));
}

}  // namespace
}  // namespace ditrun::transport
