// The MPI library's lifetime in a process started by mpirun (or alone, as a one-rank
// "singleton"), with the few collectives the runtime needs at start-up: who is where, and
// sharing a small blob such as NCCL's unique id. mpi.h stays out of this header so the rest
// of ditrun does not depend on an MPI implementation's types.
//
// Every rank constructs one session (collective) and keeps it alive longer than every
// channel made from it. MPI_Finalize in the destructor waits for the other ranks: a rank
// that fails alone must print its error and call abort(), or the others may wait forever.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ditrun::transport {

class MpiSession {
 public:
  // MPI_Init_thread asking for MPI_THREAD_SERIALIZED (a channel may live on a thread other
  // than main, one thread at a time); fails when the library gives less than FUNNELED.
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // Whether this process was started by mpirun/mpiexec or a PMI launcher (srun), from the
  // environment they set; without one a session is a singleton of size 1.
  static bool launched_by_mpirun();

  int rank() const { return rank_; }
  int size() const { return size_; }
  // Rank and rank count among the processes on this node (shared-memory domain): which GPU
  // a rank takes.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  const std::string& hostname() const { return hostname_; }
  // The thread support level MPI granted (MPI_THREAD_* value).
  int thread_level() const { return thread_level_; }

  // Ends every rank of the run with `code` (MPI_Abort).
  [[noreturn]] void abort(int code) const;

  // Collectives: every rank calls them, in the same order.
  void barrier() const;
  void broadcast(std::span<uint8_t> bytes, int root) const;  // same size on every rank
  std::vector<std::string> allgather(std::string_view mine) const;  // indexed by rank

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, thread_level_ = 0;
  std::string hostname_;
};

// Who every rank is, indexed by rank (collective): for logs, ledgers and stopping a run.
struct RankInfo {
  int rank = 0;
  std::string hostname;
  int pid = 0;
  int local_rank = 0;
};
std::vector<RankInfo> all_ranks(const MpiSession& session);

}  // namespace ditrun::transport
