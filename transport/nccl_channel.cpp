#include "transport/nccl_channel.h"

#include "transport/device_link.h"

#include <nccl.h>

#include <cstring>
#include <vector>

#include "runtime/core/error.h"

namespace ditrun::transport {
namespace {

void check_nccl(ncclResult_t result, ncclComm_t comm, std::string_view what) {
  if (result == ncclSuccess) return;
  const char* detail = ncclGetLastError(comm);
  fail("{}: {}{}{}", what, ncclGetErrorString(result), detail && *detail ? ": " : "", detail ? detail : "");
}

void check_cuda(cudaError_t result, std::string_view what) {
  if (result != cudaSuccess) fail("{}: {} ({})", what, cudaGetErrorString(result), cudaGetErrorName(result));
}

}  // namespace

NcclUniqueIdBytes broadcast_nccl_unique_id(const MpiSession& session) {
  static_assert(sizeof(ncclUniqueId) == sizeof(NcclUniqueIdBytes));
  NcclUniqueIdBytes bytes{};
  if (session.rank() == 0) {
    ncclUniqueId id;
    check_nccl(ncclGetUniqueId(&id), nullptr, "NCCL bootstrap rank 0: ncclGetUniqueId");
    std::memcpy(bytes.data(), &id, sizeof id);
  }
  session.broadcast(bytes, 0);
  return bytes;
}

std::optional<std::string> nccl_unavailable_reason(const MpiSession& session) {
  int devices = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&devices); e != cudaSuccess)
    return fmt::format("rank {} on {}: cudaGetDeviceCount: {} ({})", session.rank(), session.hostname(),
                       cudaGetErrorString(e), cudaGetErrorName(e));
  if (devices == 0) return fmt::format("rank {} on {}: no CUDA device", session.rank(), session.hostname());
  return std::nullopt;
}

NcclComm::NcclComm(const MpiSession& session) : rank_(session.rank()), size_(session.size()) {
  // Each rank says which GPU it will use (or why it has none) before any rank waits inside
  // NCCL, so a problem on one rank is the same error on every rank instead of a hang.
  std::string mine;
  if (const auto reason = nccl_unavailable_reason(session)) {
    mine = "!" + *reason;
  } else {
    int devices = 0;
    check_cuda(cudaGetDeviceCount(&devices), "NCCL communicator: cudaGetDeviceCount");
    device_ = session.local_rank() % devices;
    // NCCL binds the communicator to the device current at init.
    check_cuda(cudaSetDevice(device_), fmt::format("NCCL communicator rank {}: cudaSetDevice({})", rank_, device_));
    char bus_id[32] = {};
    check_cuda(cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, device_),
               fmt::format("NCCL communicator rank {}: PCI bus id of cuda:{}", rank_, device_));
    mine = session.hostname() + " GPU " + bus_id;
  }
  const std::vector<std::string> all = session.allgather(mine);
  std::string problems;
  for (int r = 0; r < size_; ++r) {
    const std::string& gpu = all[size_t(r)];
    if (gpu.starts_with("!")) problems += (problems.empty() ? "" : "; ") + gpu.substr(1);
    for (int earlier = 0; earlier < r && !gpu.starts_with("!"); ++earlier)
      if (all[size_t(earlier)] == gpu)
        problems += fmt::format("{}ranks {} and {} both on {} (NCCL needs one GPU per rank)",
                                problems.empty() ? "" : "; ", earlier, r, gpu);
  }
  if (!problems.empty()) fail("NCCL communicator: {}", problems);

  const NcclUniqueIdBytes bytes = broadcast_nccl_unique_id(session);
  ncclUniqueId id;
  std::memcpy(&id, bytes.data(), sizeof id);
  ncclComm_t comm = nullptr;
  check_nccl(ncclCommInitRank(&comm, size_, id, rank_), comm,
             fmt::format("NCCL communicator rank {} of {} on {} cuda:{}: ncclCommInitRank", rank_, size_,
                         session.hostname(), device_));
  comm_ = comm;
}

NcclComm::NcclComm(int device) : rank_(0), size_(1), device_(device) {
  check_cuda(cudaSetDevice(device_), fmt::format("NCCL communicator: cudaSetDevice({})", device_));
  ncclComm_t comm = nullptr;
  check_nccl(ncclCommInitAll(&comm, 1, &device_), comm, fmt::format("NCCL one-rank communicator on cuda:{}", device_));
  comm_ = comm;
}

NcclComm::~NcclComm() {
  if (comm_ != nullptr) ncclCommDestroy(comm_);
}

void NcclComm::check_peer(const char* op, int peer) const {
  if (peer < 0 || peer >= size_) fail("NCCL rank {}: {} with peer {}: ranks are 0..{}", rank_, op, peer, size_ - 1);
}

void NcclComm::send(const void* device_ptr, size_t bytes, int peer, cudaStream_t stream) {
  send_recv(device_ptr, bytes, peer, nullptr, 0, -1, stream);
}

void NcclComm::recv(void* device_ptr, size_t bytes, int peer, cudaStream_t stream) {
  send_recv(nullptr, 0, -1, device_ptr, bytes, peer, stream);
}

void NcclComm::send_recv(const void* send_ptr, size_t send_bytes, int send_peer, void* recv_ptr, size_t recv_bytes,
                         int recv_peer, cudaStream_t stream) {
  if (send_peer != -1) check_peer("send", send_peer);
  if (recv_peer != -1) check_peer("recv", recv_peer);
  const auto what = [&] {
    return fmt::format("NCCL rank {}: send of {} bytes to rank {} / recv of {} bytes from rank {}", rank_, send_bytes,
                       send_peer, recv_bytes, recv_peer);
  };
  // Every op goes inside a group: the header's rule for sends and receives that must
  // progress together, and one pattern for all calls (mixing grouped and ungrouped calls
  // between the same peers is undefined).
  check_nccl(ncclGroupStart(), comm_, what());
  ncclResult_t result = ncclSuccess;
  if (send_peer != -1) result = ncclSend(send_ptr, send_bytes, ncclUint8, send_peer, comm_, stream);
  if (result == ncclSuccess && recv_peer != -1)
    result = ncclRecv(recv_ptr, recv_bytes, ncclUint8, recv_peer, comm_, stream);
  const ncclResult_t ended = ncclGroupEnd();
  check_nccl(result, comm_, what());
  check_nccl(ended, comm_, what());
}

void NcclComm::exchange_parts(const void* send, size_t send_step, void* recv, size_t part_bytes,
                              std::span<const int> members, cudaStream_t stream, const char* op) {
  for (int peer : members) check_peer(op, peer);
  const auto what = [&] {
    return fmt::format("NCCL rank {}: {} of {} bytes per part over {} ranks", rank_, op, part_bytes, members.size());
  };
  const auto* from = static_cast<const uint8_t*>(send);
  auto* to = static_cast<uint8_t*>(recv);
  check_nccl(ncclGroupStart(), comm_, what());
  ncclResult_t result = ncclSuccess;
  for (size_t j = 0; j < members.size() && result == ncclSuccess; ++j) {
    result = ncclSend(from + j * send_step, part_bytes, ncclUint8, members[j], comm_, stream);
    if (result == ncclSuccess) result = ncclRecv(to + j * part_bytes, part_bytes, ncclUint8, members[j], comm_, stream);
  }
  const ncclResult_t ended = ncclGroupEnd();
  check_nccl(result, comm_, what());
  check_nccl(ended, comm_, what());
}

void NcclComm::all_to_all(const void* send, void* recv, size_t part_bytes, std::span<const int> members,
                          cudaStream_t stream) {
  exchange_parts(send, part_bytes, recv, part_bytes, members, stream, "all-to-all");
}

void NcclComm::all_gather(const void* send, void* recv, size_t part_bytes, std::span<const int> members,
                          cudaStream_t stream) {
  exchange_parts(send, 0, recv, part_bytes, members, stream, "all-gather");  // the same part to every member
}

namespace {

class NcclLink final : public DeviceLink {
 public:
  explicit NcclLink(const MpiSession& session) : comm_(session) {}
  std::string name() const override { return fmt::format("nccl ({} ranks)", comm_.size()); }
  void send(const void* device_ptr, size_t bytes, int peer, void* native_stream) override {
    comm_.send(device_ptr, bytes, peer, static_cast<cudaStream_t>(native_stream));
  }
  void recv(void* device_ptr, size_t bytes, int peer, void* native_stream) override {
    comm_.recv(device_ptr, bytes, peer, static_cast<cudaStream_t>(native_stream));
  }
  void all_to_all(const void* send, void* recv, size_t part_bytes, std::span<const int> members,
                  void* native_stream) override {
    comm_.all_to_all(send, recv, part_bytes, members, static_cast<cudaStream_t>(native_stream));
  }
  void all_gather(const void* send, void* recv, size_t part_bytes, std::span<const int> members,
                  void* native_stream) override {
    comm_.all_gather(send, recv, part_bytes, members, static_cast<cudaStream_t>(native_stream));
  }

 private:
  NcclComm comm_;
};

}  // namespace

std::unique_ptr<DeviceLink> make_nccl_link(const MpiSession& session) { return std::make_unique<NcclLink>(session); }

}  // namespace ditrun::transport
