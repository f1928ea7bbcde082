// In-process channels: per-(source, tag) ordering, wildcards, probe, and the errors that
// replace hangs (a peer gone, a deadlock, a bad rank or tag).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <thread>

#include "runtime/core/error.h"
#include "transport/local_channel.h"
#include "transport/tensor_message.h"

namespace ditrun::transport {
namespace {

using ::testing::HasSubstr;

std::vector<uint8_t> number(int v) {
  std::vector<uint8_t> out(sizeof v);
  std::memcpy(out.data(), &v, sizeof v);
  return out;
}
int number(const Message& m) {
  int v = 0;
  EXPECT_EQ(m.bytes.size(), sizeof v);
  std::memcpy(&v, m.bytes.data(), sizeof v);
  return v;
}

template <class Call>
std::string error_of(Call&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LocalChannel, NamesRanksAndSize) {
  auto channels = make_local_channels(3);
  ASSERT_EQ(channels.size(), 3u);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(channels[size_t(r)]->rank(), r);
    EXPECT_EQ(channels[size_t(r)]->size(), 3);
    EXPECT_EQ(channels[size_t(r)]->name(), "local");
  }
  EXPECT_THAT(error_of([] { make_local_channels(0); }), HasSubstr("need at least 1"));
}

TEST(LocalChannel, OrderHoldsPerSourceAndTagWhateverOrderTheyAreReceivedIn) {
  constexpr int kCount = 300;
  auto channels = make_local_channels(3);
  std::vector<std::thread> senders;
  for (int source : {1, 2})
    senders.emplace_back([&, source] {
      for (int i = 0; i < kCount; ++i) channels[size_t(source)]->send(0, i % 3, number(i));
      channels[size_t(source)]->flush();
    });
  Channel& receiver = *channels[0];
  for (int tag : {2, 0, 1})
    for (int source : {2, 1})
      for (int i = tag; i < kCount; i += 3) {
        const Message m = receiver.recv(source, tag);
        ASSERT_EQ(m.source, source);
        ASSERT_EQ(m.tag, tag);
        ASSERT_EQ(number(m), i) << "from rank " << source << " tag " << tag;
      }
  for (auto& t : senders) t.join();
  EXPECT_FALSE(receiver.probe(kAnySource, kAnyTag));
}

TEST(LocalChannel, WildcardsTakeEverythingInOrderPerSource) {
  constexpr int kCount = 200;
  auto channels = make_local_channels(4);
  std::vector<std::thread> senders;
  for (int source = 1; source < 4; ++source)
    senders.emplace_back([&, source] {
      for (int i = 0; i < kCount; ++i) channels[size_t(source)]->send(0, 5, number(i));
    });
  std::map<int, int> next;
  for (int i = 0; i < 3 * kCount; ++i) {
    const Message m = channels[0]->recv(kAnySource, kAnyTag);
    EXPECT_EQ(m.tag, 5);
    EXPECT_EQ(number(m), next[m.source]++) << "from rank " << m.source;
  }
  for (auto& t : senders) t.join();
  EXPECT_EQ(next, (std::map<int, int>{{1, kCount}, {2, kCount}, {3, kCount}}));
}

TEST(LocalChannel, ProbeSeesWithoutTaking) {
  auto channels = make_local_channels(2);
  EXPECT_FALSE(channels[1]->probe(0, 3));
  channels[0]->send(1, 3, std::vector<uint8_t>(1000, 7));
  for (int i = 0; i < 2; ++i) {
    const auto seen = channels[1]->probe(kAnySource, kAnyTag);
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->source, 0);
    EXPECT_EQ(seen->tag, 3);
    EXPECT_EQ(seen->bytes, 1000u);
  }
  EXPECT_FALSE(channels[1]->probe(0, 4));
  EXPECT_FALSE(channels[0]->probe(1, 3));
  EXPECT_EQ(channels[1]->recv(0, 3).bytes, std::vector<uint8_t>(1000, 7));
  EXPECT_FALSE(channels[1]->probe(kAnySource, kAnyTag));
}

TEST(LocalChannel, RankMaySendToItself) {
  auto channels = make_local_channels(1);
  channels[0]->send(0, 0, number(42));
  channels[0]->flush();
  EXPECT_EQ(number(channels[0]->recv(0, 0)), 42);
}

TEST(LocalChannel, MessagesOutliveTheirSenderThenRecvFails) {
  auto channels = make_local_channels(2);
  channels[0]->send(1, 1, number(7));
  channels[0].reset();
  EXPECT_EQ(number(channels[1]->recv(0, 1)), 7);
  EXPECT_THAT(error_of([&] { channels[1]->recv(0, 1); }),
              HasSubstr("local channel rank 1: recv from rank 0 tag 1: rank 0 destroyed its channel"));
  EXPECT_THAT(error_of([&] { channels[1]->send(0, 1, {}); }), HasSubstr("rank 0's channel was destroyed"));
}

TEST(LocalChannel, WaitingRecvFailsWhenThePeerGoesAway) {
  auto channels = make_local_channels(3);
  std::string error;
  std::thread waiter([&] { error = error_of([&] { channels[2]->recv(kAnySource, 4); }); });
  // Rank 2 waits on both others; it must fail only once both are gone.
  channels[0].reset();
  channels[1].reset();
  waiter.join();
  EXPECT_THAT(error, HasSubstr("recv from any rank tag 4: every other rank destroyed its channel"));
}

TEST(LocalChannel, DeadlockIsReportedOnEveryRank) {
  auto channels = make_local_channels(2);
  std::string errors[2];
  std::thread t0([&] { errors[0] = error_of([&] { channels[0]->recv(1, 0); }); });
  std::thread t1([&] { errors[1] = error_of([&] { channels[1]->recv(0, 9); }); });
  t0.join();
  t1.join();
  for (const auto& e : errors) {
    EXPECT_THAT(e, HasSubstr("deadlock"));
    EXPECT_THAT(e, HasSubstr("rank 0 waits for rank 1 tag 0"));
    EXPECT_THAT(e, HasSubstr("rank 1 waits for rank 0 tag 9"));
  }
}

TEST(LocalChannel, PingPongIsNotMistakenForDeadlock) {
  constexpr int kRounds = 2000;
  auto channels = make_local_channels(2);
  std::thread other([&] {
    for (int i = 0; i < kRounds; ++i) channels[1]->send(0, 0, number(number(channels[1]->recv(0, 0)) + 1));
  });
  int value = 0;
  for (int i = 0; i < kRounds; ++i) {
    channels[0]->send(1, 0, number(value));
    value = number(channels[0]->recv(1, 0));
  }
  other.join();
  EXPECT_EQ(value, kRounds);
}

TEST(LocalChannel, BadPeersAndTagsAreNamed) {
  auto channels = make_local_channels(2);
  EXPECT_THAT(error_of([&] { channels[0]->send(2, 0, {}); }),
              HasSubstr("local channel rank 0: send with peer 2: ranks are 0..1"));
  EXPECT_THAT(error_of([&] { channels[0]->send(kAnySource, 0, {}); }), HasSubstr("send with peer -1"));
  EXPECT_THAT(error_of([&] { channels[0]->send(1, kAnyTag, {}); }), HasSubstr("send with tag -1"));
  EXPECT_THAT(error_of([&] { channels[0]->recv(1, kMaxTag + 1); }), HasSubstr("recv with tag 32768: tags are 0..32767"));
  EXPECT_THAT(error_of([&] { channels[0]->probe(-5, 0); }), HasSubstr("probe with peer -5"));
}

TEST(LocalChannel, CarriesTensorMessages) {
  auto channels = make_local_channels(2);
  TensorMessage m;
  m.header = {{"job", "j1"}};
  m.ints["step"] = 4;
  m.tensors["img"] = HostTensor({2, 2}, {1, 2, 3, 4});
  channels[0]->send(1, 2, encode_tensor_message(m));
  const TensorMessage got = decode_tensor_message(channels[1]->recv(0, 2));
  EXPECT_EQ(got.header, m.header);
  EXPECT_EQ(got.integer("step"), 4);
  EXPECT_EQ(got.tensor("img").data, m.tensors["img"].data);
}

}  // namespace
}  // namespace ditrun::transport
