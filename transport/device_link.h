// Moves device memory between ranks without going through the host: the activations a
// pipeline stage hands to the next when both run on CUDA. The one implementation is NCCL
// (nccl_channel.h); streams are the backend's native streams, passed as opaque pointers so
// this header needs no CUDA. Transfers are asynchronous on the stream and complete in stream
// order; each send is matched by the peer's recv of the same byte count, in the same order.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace ditrun::transport {

class MpiSession;

class DeviceLink {
 public:
  virtual ~DeviceLink() = default;
  virtual std::string name() const = 0;  // "nccl (4 ranks)"
  virtual void send(const void* device_ptr, size_t bytes, int peer, void* native_stream) = 0;
  virtual void recv(void* device_ptr, size_t bytes, int peer, void* native_stream) = 0;
  // Collectives over `members` (distinct ranks, this one among them, the same list in the same
  // order on every member), on the stream: the sequence-parallel token exchange on the device.
  // all_to_all: part j of `send` (`part_bytes` each) goes to member j, part i of `recv` comes
  // from member i. all_gather: every member's `part_bytes` of `send`, in member order, in `recv`.
  virtual void all_to_all(const void* send, void* recv, size_t part_bytes, std::span<const int> members,
                          void* native_stream) = 0;
  virtual void all_gather(const void* send, void* recv, size_t part_bytes, std::span<const int> members,
                          void* native_stream) = 0;
};

// Collective over the session's ranks (every rank calls it): an NCCL communicator on each
// rank's node-local GPU. Fails on every rank alike when NCCL cannot run (no GPU, two ranks on
// one GPU, a build without NCCL).
std::unique_ptr<DeviceLink> make_nccl_link(const MpiSession& session);

}  // namespace ditrun::transport
