#include "transport/mpi_channel.h"

#include <mpi.h>

#include <climits>
#include <cstdio>
#include <exception>
#include <list>

#include "runtime/core/error.h"
#include "transport/address_checks.h"
#include "transport/mpi_check.h"

namespace ditrun::transport {
namespace {

int mpi_source(int peer) { return peer == kAnySource ? MPI_ANY_SOURCE : peer; }
int mpi_tag(int tag) { return tag == kAnyTag ? MPI_ANY_TAG : tag; }

// `bytes` bytes as (datatype, count) for MPI's int counts: MPI_BYTE up to INT_MAX, beyond
// that one element of a committed struct type of 1 GiB blocks plus the remainder. Both have
// the same type signature (n bytes), so either side may use either form.
class ByteLayout {
 public:
  explicit ByteLayout(size_t bytes) {
    if (bytes <= size_t(INT_MAX)) {
      count_ = int(bytes);
      return;
    }
    constexpr size_t kBlock = size_t(1) << 30;
    MPI_Datatype block = MPI_DATATYPE_NULL;
    check_mpi(MPI_Type_contiguous(int(kBlock), MPI_BYTE, &block), "mpi channel: a type for {} bytes", bytes);
    const int lengths[2] = {int(bytes / kBlock), int(bytes % kBlock)};
    const MPI_Aint displacements[2] = {0, MPI_Aint(bytes / kBlock * kBlock)};
    const MPI_Datatype types[2] = {block, MPI_BYTE};
    check_mpi(MPI_Type_create_struct(2, lengths, displacements, types, &type_), "mpi channel: a type for {} bytes",
              bytes);
    MPI_Type_free(&block);
    check_mpi(MPI_Type_commit(&type_), "mpi channel: a type for {} bytes", bytes);
    owned_ = true;
    count_ = 1;
  }
  // Freeing a type that a posted operation uses is allowed: the operation completes normally.
  ~ByteLayout() {
    if (owned_) MPI_Type_free(&type_);
  }
  ByteLayout(const ByteLayout&) = delete;
  ByteLayout& operator=(const ByteLayout&) = delete;

  MPI_Datatype type() const { return type_; }
  int count() const { return count_; }

 private:
  MPI_Datatype type_ = MPI_BYTE;
  int count_ = 0;
  bool owned_ = false;
};

struct PendingSend {
  MPI_Request request = MPI_REQUEST_NULL;
  std::vector<uint8_t> bytes;
  int peer = 0, tag = 0;
};

class MpiChannel final : public Channel {
 public:
  explicit MpiChannel(MpiSession& session) : rank_(session.rank()), size_(session.size()) {
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "mpi channel rank {}: duplicating MPI_COMM_WORLD", rank_);
    check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "mpi channel rank {}: setting MPI_ERRORS_RETURN",
              rank_);
  }

  ~MpiChannel() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) {
      std::fprintf(stderr, "mpi channel rank %d: destroyed after MPI_Finalize (the session must outlive it)\n", rank_);
      return;
    }
    if (std::uncaught_exceptions() > 0) {
      abandon_pending();
      return;
    }
    try {
      flush();
    } catch (const Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      abandon_pending();
    }
    MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  void send(int peer, int tag, std::vector<uint8_t> bytes) override {
    check_peer(*this, "send", peer, false);
    check_tag(*this, "send", tag, false);
    reap_finished();
    // std::list: the buffer and the request stay where MPI was told they are.
    auto& pending = pending_.emplace_back(PendingSend{MPI_REQUEST_NULL, std::move(bytes), peer, tag});
    const ByteLayout layout(pending.bytes.size());
    const int code = MPI_Isend(pending.bytes.data(), layout.count(), layout.type(), peer, tag, comm_, &pending.request);
    if (code != MPI_SUCCESS) {
      const size_t size = pending.bytes.size();
      pending_.pop_back();
      check_mpi(code, "mpi channel rank {}: send of {} bytes to rank {} tag {}", rank_, size, peer, tag);
    }
  }

  Message recv(int peer, int tag) override {
    check_peer(*this, "recv", peer, true);
    check_tag(*this, "recv", tag, true);
    reap_finished();
    MPI_Message handle = MPI_MESSAGE_NULL;
    MPI_Status status;
    check_mpi(MPI_Mprobe(mpi_source(peer), mpi_tag(tag), comm_, &handle, &status),
              "mpi channel rank {}: recv from {} {}: probing", rank_, peer_label(peer), tag_label(tag));
    Message m;
    m.source = status.MPI_SOURCE;
    m.tag = status.MPI_TAG;
    MPI_Count count = 0;
    check_mpi(MPI_Get_elements_x(&status, MPI_BYTE, &count), "mpi channel rank {}: recv from rank {} tag {}: size",
              rank_, m.source, m.tag);
    m.bytes.resize(size_t(count));
    const ByteLayout layout(m.bytes.size());
    check_mpi(MPI_Mrecv(m.bytes.data(), layout.count(), layout.type(), &handle, &status),
              "mpi channel rank {}: recv of {} bytes from rank {} tag {}", rank_, count, m.source, m.tag);
    return m;
  }

  std::optional<Envelope> probe(int peer, int tag) override {
    check_peer(*this, "probe", peer, true);
    check_tag(*this, "probe", tag, true);
    reap_finished();
    int found = 0;
    MPI_Status status;
    check_mpi(MPI_Iprobe(mpi_source(peer), mpi_tag(tag), comm_, &found, &status),
              "mpi channel rank {}: probe for {} {}", rank_, peer_label(peer), tag_label(tag));
    if (!found) return std::nullopt;
    MPI_Count count = 0;
    check_mpi(MPI_Get_elements_x(&status, MPI_BYTE, &count), "mpi channel rank {}: probe of rank {} tag {}: size",
              rank_, status.MPI_SOURCE, status.MPI_TAG);
    return Envelope{status.MPI_SOURCE, status.MPI_TAG, size_t(count)};
  }

  void flush() override {
    while (!pending_.empty()) {
      PendingSend& oldest = pending_.front();
      MPI_Status status;
      const int code = MPI_Wait(&oldest.request, &status);
      const size_t size = oldest.bytes.size();
      const int peer = oldest.peer, tag = oldest.tag;
      pending_.pop_front();
      check_mpi(code, "mpi channel rank {}: send of {} bytes to rank {} tag {}", rank_, size, peer, tag);
    }
  }

 private:
  // Frees the buffers of finished sends; reports the first failed one.
  void reap_finished() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      int done = 0;
      MPI_Status status;
      const int code = MPI_Test(&it->request, &done, &status);
      if (code != MPI_SUCCESS) {
        const size_t size = it->bytes.size();
        const int peer = it->peer, tag = it->tag;
        pending_.erase(it);
        check_mpi(code, "mpi channel rank {}: send of {} bytes to rank {} tag {}", rank_, size, peer, tag);
      }
      it = done ? pending_.erase(it) : std::next(it);
    }
  }

  // MPI may still read the buffers of unfinished sends: let them go without freeing them.
  void abandon_pending() {
    for (auto& p : pending_) MPI_Request_free(&p.request);
    static_cast<void>(new std::list<PendingSend>(std::move(pending_)));
  }

  int rank_, size_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::list<PendingSend> pending_;
};

}  // namespace

std::unique_ptr<Channel> make_mpi_channel(MpiSession& session) { return std::make_unique<MpiChannel>(session); }

}  // namespace ditrun::transport
