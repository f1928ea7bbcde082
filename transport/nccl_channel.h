// GPU-to-GPU transfers of device memory with NCCL, bootstrapped over MPI: rank 0 asks NCCL
// for a unique id, MPI broadcasts its 128 bytes, and every rank joins the communicator on
// its node-local GPU. Compiled only when CUDA and nccl.h are found (DITRUN_HAVE_NCCL).
//
// NCCL 2.28 refuses two ranks on one GPU ("Duplicate GPU detected"); NcclComm checks that
// (and that every rank has a GPU at all) on every rank before entering NCCL, so the answer
// is one error everywhere rather than a hang. Transfers are enqueued on the caller's stream
// and complete in stream order.
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "transport/mpi_session.h"

struct ncclComm;  // nccl.h's communicator, kept out of this header

namespace ditrun::transport {

using NcclUniqueIdBytes = std::array<uint8_t, 128>;

// Collective: rank 0's ncclGetUniqueId, broadcast to every rank. Needs no GPU.
NcclUniqueIdBytes broadcast_nccl_unique_id(const MpiSession& session);

// Why this rank cannot use a GPU (no CUDA driver, no device), or nothing when it can.
// Local: each rank answers for itself.
std::optional<std::string> nccl_unavailable_reason(const MpiSession& session);

class NcclComm {
 public:
  // Collective over the session's ranks: selects GPU local_rank % visible device count
  // (cudaSetDevice, which stays current on the calling thread), checks no two ranks share a
  // GPU (by host and PCI bus id), then ncclCommInitRank.
  explicit NcclComm(const MpiSession& session);
  // A communicator of one rank on `device`, without MPI: a single process exchanging with
  // itself (send_recv to rank 0), which is what one GPU can check of NCCL.
  explicit NcclComm(int device);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int device() const { return device_; }

  // `bytes` bytes of device memory to / from `peer`; the peer makes the matching call with
  // the same byte count.
  void send(const void* device_ptr, size_t bytes, int peer, cudaStream_t stream);
  void recv(void* device_ptr, size_t bytes, int peer, cudaStream_t stream);
  // A send and a receive in one NCCL group, so a pipeline stage can take from the stage
  // before while it gives to the stage after without the two blocking each other. A peer of
  // -1 leaves that half out.
  void send_recv(const void* send_ptr, size_t send_bytes, int send_peer, void* recv_ptr, size_t recv_bytes,
                 int recv_peer, cudaStream_t stream);
  // Over a subset of the ranks, as grouped sends and receives (ncclAllToAll and ncclAllGather
  // span the whole communicator); see DeviceLink.
  void all_to_all(const void* send, void* recv, size_t part_bytes, std::span<const int> members, cudaStream_t stream);
  void all_gather(const void* send, void* recv, size_t part_bytes, std::span<const int> members, cudaStream_t stream);

 private:
  // Member j gets send + j·send_step (part_bytes of it), and part j of recv comes from member j:
  // both collectives as one NCCL group of sends and receives.
  void exchange_parts(const void* send, size_t send_step, void* recv, size_t part_bytes, std::span<const int> members,
                      cudaStream_t stream, const char* op);
  void check_peer(const char* op, int peer) const;

  ncclComm* comm_ = nullptr;
  int rank_ = 0, size_ = 1, device_ = 0;
};

}  // namespace ditrun::transport
