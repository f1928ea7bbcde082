// Point-to-point messages between the ranks of a run: what the coordinator, the pipeline
// stages and the replicas say to each other. Three implementations:
//   local  ranks are threads of one process (tests of the distributed logic without mpirun)
//   mpi    ranks are processes under mpirun; bytes travel in host memory
//   nccl   (device tensors only) GPU to GPU, bootstrapped over MPI; see nccl_channel.h
//
// Semantics, the same for every implementation:
//   - Messages between one (source, destination, tag) triple arrive in the order sent.
//   - send() takes the bytes and returns at once (the transfer overlaps whatever the caller
//     does next); flush() waits until every send of this rank has left.
//   - recv() blocks until a matching message arrives; probe() says whether one has, without
//     blocking. kAnySource / kAnyTag match anything.
//   - A failure (a peer gone, a transport error) is a ditrun::Error naming the peer and tag.
//   - Peers are ranks 0..size()-1; a rank may send to itself. Tags are 0..kMaxTag (the
//     smallest upper bound MPI guarantees); a negative tag or peer other than the kAny
//     wildcards in recv/probe is refused.
//   - One thread uses a channel at a time (MPI runs with MPI_THREAD_SERIALIZED).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ditrun::transport {

inline constexpr int kAnySource = -1;
inline constexpr int kAnyTag = -1;
inline constexpr int kMaxTag = 32767;

struct Message {
  int source = 0;
  int tag = 0;
  std::vector<uint8_t> bytes;
};

struct Envelope {
  int source = 0;
  int tag = 0;
  size_t bytes = 0;
};

class Channel {
 public:
  virtual ~Channel() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "local", "mpi"

  virtual void send(int peer, int tag, std::vector<uint8_t> bytes) = 0;
  virtual Message recv(int peer, int tag) = 0;
  virtual std::optional<Envelope> probe(int peer, int tag) = 0;
  virtual void flush() = 0;
};

}  // namespace ditrun::transport
