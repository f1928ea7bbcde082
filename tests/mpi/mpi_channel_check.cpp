// The MPI channel across real processes (ctest runs it under mpirun with 1, 2 and 3 ranks):
// ordering per (source, tag), any-source receives, probe, 64 MiB messages, tensor messages,
// all_ranks, and the NCCL unique-id bootstrap (plus a ring of device buffers when every
// rank has its own GPU). Any mismatch ends every rank with a message and exit code 1.
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/error.h"
#include "transport/mpi_channel.h"
#include "transport/rank_group.h"
#include "transport/tensor_message.h"
#ifdef DITRUN_HAVE_NCCL
#include "transport/nccl_channel.h"
#endif

namespace {

using namespace ditrun;
using namespace ditrun::transport;

template <class... Args>
void expect(bool ok, fmt::format_string<Args...> what, Args&&... args) {
  if (!ok) fail(what, std::forward<Args>(args)...);
}

// Payload naming where a message came from: source, tag, sequence number.
std::vector<uint8_t> stamp(int source, int tag, int seq) {
  std::vector<uint8_t> out(12);
  const int v[3] = {source, tag, seq};
  std::memcpy(out.data(), v, sizeof v);
  return out;
}
std::array<int, 3> read_stamp(const Message& m) {
  expect(m.bytes.size() == 12, "message from rank {} tag {} has {} bytes, expected 12", m.source, m.tag, m.bytes.size());
  std::array<int, 3> v;
  std::memcpy(v.data(), m.bytes.data(), sizeof v);
  expect(v[0] == m.source && v[1] == m.tag, "message stamped rank {} tag {} arrived as rank {} tag {}", v[0], v[1],
         m.source, m.tag);
  return v;
}

void check_ranks(const MpiSession& session) {
  expect(MpiSession::launched_by_mpirun(), "launched_by_mpirun() is false under mpirun");
  const auto ranks = all_ranks(session);
  expect(int(ranks.size()) == session.size(), "all_ranks gave {} entries for {} ranks", ranks.size(), session.size());
  std::set<std::pair<std::string, int>> pids;
  for (int r = 0; r < session.size(); ++r) {
    const auto& info = ranks[size_t(r)];
    expect(info.rank == r, "all_ranks entry {} says rank {}", r, info.rank);
    expect(!info.hostname.empty(), "rank {} has an empty hostname", r);
    expect(info.local_rank >= 0 && info.local_rank < session.size(), "rank {} has local rank {}", r, info.local_rank);
    expect(pids.insert({info.hostname, info.pid}).second, "rank {} repeats pid {} on {}", r, info.pid, info.hostname);
  }
  const auto& me = ranks[size_t(session.rank())];
  expect(me.pid == int(::getpid()) && me.hostname == session.hostname() && me.local_rank == session.local_rank(),
         "rank {}'s own entry (pid {}, {}, local {}) is not itself", session.rank(), me.pid, me.hostname, me.local_rank);
}

// Every rank sends kCount messages to every rank (itself included) alternating tags 0 and 1,
// then receives them tag 1 first, sources in reverse: each (source, tag) stream must still
// come in order.
void check_ordering(Channel& ch) {
  constexpr int kCount = 200;
  for (int seq = 0; seq < kCount; ++seq)
    for (int peer = 0; peer < ch.size(); ++peer) ch.send(peer, seq % 2, stamp(ch.rank(), seq % 2, seq));
  for (int tag : {1, 0})
    for (int source = ch.size() - 1; source >= 0; --source)
      for (int seq = tag; seq < kCount; seq += 2) {
        const auto v = read_stamp(ch.recv(source, tag));
        expect(v[2] == seq, "ordering: from rank {} tag {} got message {} where {} was due", source, tag, v[2], seq);
      }
  ch.flush();
}

// Rank 0 takes everything the others send with kAnySource / kAnyTag; per source and tag the
// sequence must rise.
void check_any_source(Channel& ch) {
  constexpr int kCount = 50;
  if (ch.rank() != 0) {
    for (int seq = 0; seq < kCount; ++seq) ch.send(0, 10 + seq % 3, stamp(ch.rank(), 10 + seq % 3, seq));
    ch.flush();
    return;
  }
  std::map<std::pair<int, int>, int> last;
  for (int i = 0; i < kCount * (ch.size() - 1); ++i) {
    const Message m = ch.recv(kAnySource, kAnyTag);
    const auto v = read_stamp(m);
    expect(m.source != 0 && m.tag >= 10 && m.tag < 13, "any-source: unexpected message from rank {} tag {}", m.source,
           m.tag);
    auto [it, fresh] = last.try_emplace({m.source, m.tag}, -1);
    expect(v[2] > it->second, "any-source: rank {} tag {} message {} came after {}", m.source, m.tag, v[2], it->second);
    it->second = v[2];
  }
}

// Each rank sends 1234 bytes to the next one (itself when alone) on tag 5; the receiver
// polls probe until it sees it, checks the envelope, that probing did not consume it and
// that other tags are not matched.
void check_probe(Channel& ch) {
  const int next = (ch.rank() + 1) % ch.size(), previous = (ch.rank() + ch.size() - 1) % ch.size();
  ch.send(next, 5, std::vector<uint8_t>(1234, uint8_t(ch.rank())));
  std::optional<Envelope> seen;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!(seen = ch.probe(previous, 5))) {
    expect(std::chrono::steady_clock::now() < deadline, "probe: nothing from rank {} tag 5 after 30 s", previous);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  expect(seen->source == previous && seen->tag == 5 && seen->bytes == 1234,
         "probe: envelope rank {} tag {} {} bytes, expected rank {} tag 5 1234 bytes", seen->source, seen->tag,
         seen->bytes, previous);
  const auto again = ch.probe(previous, 5);
  expect(again && again->bytes == 1234, "probe consumed the message");
  expect(!ch.probe(previous, 6), "probe for tag 6 matched a tag 5 message");
  const Message m = ch.recv(previous, 5);
  expect(m.bytes.size() == 1234 && m.bytes[0] == uint8_t(previous), "probe: received message differs");
  ch.flush();
}

// 64 MiB around the ring, a pattern that depends on the sender and the position.
void check_large(Channel& ch) {
  constexpr size_t kBytes = size_t(64) << 20;
  const int next = (ch.rank() + 1) % ch.size(), previous = (ch.rank() + ch.size() - 1) % ch.size();
  const auto pattern = [](int source, size_t i) { return uint8_t((i * 131 + size_t(source) * 7 + (i >> 20)) & 0xff); };
  std::vector<uint8_t> out(kBytes);
  for (size_t i = 0; i < kBytes; ++i) out[i] = pattern(ch.rank(), i);
  ch.send(next, 7, std::move(out));
  const Message m = ch.recv(previous, 7);
  expect(m.bytes.size() == kBytes, "large: {} bytes from rank {}, expected {}", m.bytes.size(), previous, kBytes);
  for (size_t i = 0; i < kBytes; ++i)
    expect(m.bytes[i] == pattern(previous, i), "large: byte {} from rank {} is {}, expected {}", i, previous,
           m.bytes[i], pattern(previous, i));
  ch.flush();
}

void check_tensor_messages(Channel& ch) {
  const int next = (ch.rank() + 1) % ch.size(), previous = (ch.rank() + ch.size() - 1) % ch.size();
  const auto make = [](int rank) {
    TensorMessage m;
    m.header = {{"job", "ring"}, {"from", rank}};
    m.ints["step"] = 1000 + rank;
    HostTensor img({2, 3, 4});
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float(rank) + 0.25f * float(i);
    m.tensors["img"] = std::move(img);
    m.tensors["empty"] = HostTensor({0, 5});
    return m;
  };
  ch.send(next, 9, encode_tensor_message(make(ch.rank())));
  const TensorMessage got = decode_tensor_message(ch.recv(previous, 9));
  const TensorMessage want = make(previous);
  expect(got.header == want.header, "tensor message: header {} expected {}", got.header.dump(), want.header.dump());
  expect(got.ints == want.ints, "tensor message: integers differ from rank {}'s", previous);
  expect(got.tensor("img").shape == want.tensor("img").shape && got.tensor("img").data == want.tensor("img").data,
         "tensor message: tensor img differs from rank {}'s", previous);
  expect(got.tensor("empty").shape == Shape({0, 5}), "tensor message: tensor empty has shape {}",
         shape_string(got.tensor("empty").shape));
  ch.flush();
}

void check_errors(Channel& ch) {
  const auto error_of = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string bad_peer = error_of([&] { ch.send(ch.size(), 0, {}); });
  expect(bad_peer.find(fmt::format("peer {}", ch.size())) != std::string::npos, "send to a missing rank: '{}'",
         bad_peer);
  const std::string bad_tag = error_of([&] { ch.send(0, kMaxTag + 1, {}); });
  expect(bad_tag.find(fmt::format("tag {}", kMaxTag + 1)) != std::string::npos, "send with a bad tag: '{}'", bad_tag);
}

std::string nccl_checks(const MpiSession& session) {
#ifdef DITRUN_HAVE_NCCL
  const NcclUniqueIdBytes id = broadcast_nccl_unique_id(session);
  std::string hex;
  for (uint8_t b : id) hex += fmt::format("{:02x}", b);
  expect(hex != std::string(hex.size(), '0'), "NCCL unique id on rank {} is all zero", session.rank());
  const auto ids = session.allgather(hex);
  for (int r = 0; r < session.size(); ++r)
    expect(ids[size_t(r)] == ids[0], "NCCL unique id on rank {} differs from rank 0's", r);

  // Joining a communicator needs a GPU of its own on every rank; the decision is collective.
  const auto reason = nccl_unavailable_reason(session);
  int devices = 0;
  if (!reason) cudaGetDeviceCount(&devices);
  std::string skip = reason ? *reason : "";
  if (!reason && session.local_size() > devices)
    skip = fmt::format("{} ranks on {} share {} GPU(s)", session.local_size(), session.hostname(), devices);
  for (const auto& why : session.allgather(skip))
    if (!why.empty()) return "NCCL id bootstrap ok; communicator skipped: " + why;

  NcclComm comm(session);
  constexpr size_t kBytes = size_t(1) << 20;
  const int next = (comm.rank() + 1) % comm.size(), previous = (comm.rank() + comm.size() - 1) % comm.size();
  std::vector<uint8_t> host(kBytes);
  for (size_t i = 0; i < kBytes; ++i) host[i] = uint8_t(i * 3 + size_t(comm.rank()));
  void *send_buffer = nullptr, *recv_buffer = nullptr;
  expect(cudaMalloc(&send_buffer, kBytes) == cudaSuccess && cudaMalloc(&recv_buffer, kBytes) == cudaSuccess,
         "NCCL ring: cudaMalloc failed on rank {}", comm.rank());
  expect(cudaMemcpy(send_buffer, host.data(), kBytes, cudaMemcpyHostToDevice) == cudaSuccess, "NCCL ring: upload");
  cudaStream_t stream = nullptr;
  expect(cudaStreamCreate(&stream) == cudaSuccess, "NCCL ring: cudaStreamCreate");
  comm.send_recv(send_buffer, kBytes, next, recv_buffer, kBytes, previous, stream);
  expect(cudaStreamSynchronize(stream) == cudaSuccess, "NCCL ring: synchronize on rank {}", comm.rank());
  expect(cudaMemcpy(host.data(), recv_buffer, kBytes, cudaMemcpyDeviceToHost) == cudaSuccess, "NCCL ring: download");
  for (size_t i = 0; i < kBytes; ++i)
    expect(host[i] == uint8_t(i * 3 + size_t(previous)), "NCCL ring: byte {} from rank {} differs", i, previous);
  cudaStreamDestroy(stream);
  cudaFree(send_buffer);
  cudaFree(recv_buffer);
  return "NCCL id bootstrap and 1 MiB device ring ok";
#else
  (void)session;
  return "NCCL not built";
#endif
}

}  // namespace

// Collectives over the whole world and over the odd ranks (rank 0 stays out), with a
// point-to-point message on another tag in between that neither may swallow.
void check_collectives(Channel& channel) {
  const int n = channel.size(), me = channel.rank();
  std::vector<int> world(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) world[size_t(r)] = n - 1 - r;  // member order is not rank order
  RankGroup group(channel, world, 21);
  std::vector<Bytes> to(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) to[size_t(j)] = stamp(me, 21, group.member(j));
  channel.send(me, 3, stamp(me, 3, 99));
  const std::vector<Bytes> from = group.all_to_all(to);
  for (int i = 0; i < n; ++i) {
    const auto v = read_stamp({group.member(i), 21, from[size_t(i)]});
    expect(v[2] == me, "all_to_all: member {} sent rank {} the part for rank {}", i, me, v[2]);
  }
  const std::vector<Bytes> all = group.all_gather(stamp(me, 21, 7 * me));
  for (int i = 0; i < n; ++i)
    expect(read_stamp({group.member(i), 21, all[size_t(i)]})[2] == 7 * group.member(i), "all_gather: member {} wrong", i);
  expect(read_stamp(channel.recv(me, 3))[2] == 99, "the message on tag 3 was lost among the collectives");
  if (me % 2 == 1) {
    std::vector<int> odd;
    for (int r = 1; r < n; r += 2) odd.push_back(r);
    RankGroup odds(channel, odd, 22);
    const std::vector<Bytes> got = odds.gather(stamp(me, 22, me * me), 0);
    if (odds.index() == 0)
      for (int i = 0; i < odds.size(); ++i)
        expect(read_stamp({odds.member(i), 22, got[size_t(i)]})[2] == odds.member(i) * odds.member(i),
               "gather: member {} wrong", i);
    else
      expect(got.empty(), "gather: a non-root member received {} parts", got.size());
  }
}

int main() {
  MpiSession session;
  try {
    const auto channel = make_mpi_channel(session);
    check_ranks(session);
    check_ordering(*channel);
    check_any_source(*channel);
    session.barrier();
    check_probe(*channel);
    check_large(*channel);
    check_tensor_messages(*channel);
    check_errors(*channel);
    session.barrier();
    check_collectives(*channel);
    session.barrier();
    const std::string nccl = nccl_checks(session);
    session.barrier();
    if (session.rank() == 0)
      std::printf("mpi_channel_check: %d rank(s): all_ranks, ordering, any-source, probe, 64 MiB, tensor messages, "
                  "errors, collectives ok; %s\n",
                  session.size(), nccl.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_channel_check rank %d: %s\n", session.rank(), e.what());
    std::fflush(stderr);
    session.abort(1);
  }
  return 0;
}
