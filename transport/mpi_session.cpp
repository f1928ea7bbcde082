#include "transport/mpi_session.h"

#include <mpi.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "transport/mpi_check.h"

namespace ditrun::transport {

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return fmt::format("MPI error code {}", code);
  return std::string(text, size_t(length));
}

MpiSession::MpiSession() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized) fail("MPI session: MPI is already initialized (one MpiSession per process)");
  if (finalized) fail("MPI session: MPI was finalized in this process and cannot start again");

  // Until the error handler below is set, MPI errors abort the job (MPI_ERRORS_ARE_FATAL).
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  thread_level_ = provided;
  check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI session: setting MPI_ERRORS_RETURN");
  if (provided < MPI_THREAD_FUNNELED)
    fail("MPI session: the MPI library grants thread level {}, ditrun needs at least MPI_THREAD_FUNNELED", provided);
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI session: MPI_Comm_rank");
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI session: MPI_Comm_size");

  // The node-local rank from MPI itself rather than launcher variables, so srun and
  // singletons agree with mpirun.
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
            "MPI session rank {}: splitting the ranks by node", rank_);
  check_mpi(MPI_Comm_rank(node, &local_rank_), "MPI session rank {}: node-local rank", rank_);
  check_mpi(MPI_Comm_size(node, &local_size_), "MPI session rank {}: node-local size", rank_);
  MPI_Comm_free(&node);

  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0) std::snprintf(name, sizeof name, "unknown-host");
  hostname_ = name;
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

bool MpiSession::launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(var) != nullptr) return true;
  return false;
}

void MpiSession::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest if it did.
}

void MpiSession::barrier() const {
  check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI session rank {}: barrier", rank_);
}

void MpiSession::broadcast(std::span<uint8_t> bytes, int root) const {
  if (root < 0 || root >= size_) fail("MPI session rank {}: broadcast from rank {}: ranks are 0..{}", rank_, root, size_ - 1);
  if (bytes.size() > size_t(INT_MAX))
    fail("MPI session rank {}: broadcast of {} bytes: at most {} are supported", rank_, bytes.size(), INT_MAX);
  check_mpi(MPI_Bcast(bytes.data(), int(bytes.size()), MPI_BYTE, root, MPI_COMM_WORLD),
            "MPI session rank {}: broadcast of {} bytes from rank {}", rank_, bytes.size(), root);
}

std::vector<std::string> MpiSession::allgather(std::string_view mine) const {
  if (mine.size() > size_t(INT_MAX))
    fail("MPI session rank {}: allgather of {} bytes: at most {} per rank", rank_, mine.size(), INT_MAX);
  std::vector<int> lengths(size_t(size_), 0);
  const int my_length = int(mine.size());
  check_mpi(MPI_Allgather(&my_length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD),
            "MPI session rank {}: allgather of lengths", rank_);
  std::vector<int> offsets(size_t(size_), 0);
  long long total = 0;
  for (int r = 0; r < size_; ++r) {
    offsets[size_t(r)] = int(total);
    total += lengths[size_t(r)];
    if (total > INT_MAX) fail("MPI session rank {}: allgather of more than {} bytes in all", rank_, INT_MAX);
  }
  std::string all(size_t(total), '\0');
  check_mpi(MPI_Allgatherv(mine.data(), my_length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR,
                           MPI_COMM_WORLD),
            "MPI session rank {}: allgather of {} bytes", rank_, total);
  std::vector<std::string> out;
  for (int r = 0; r < size_; ++r) out.push_back(all.substr(size_t(offsets[size_t(r)]), size_t(lengths[size_t(r)])));
  return out;
}

std::vector<RankInfo> all_ranks(const MpiSession& session) {
  const nlohmann::json mine = {{"rank", session.rank()},
                               {"hostname", session.hostname()},
                               {"pid", int(::getpid())},
                               {"local_rank", session.local_rank()}};
  std::vector<RankInfo> out;
  for (const auto& text : session.allgather(mine.dump())) {
    const auto j = nlohmann::json::parse(text);
    out.push_back({j.at("rank").get<int>(), j.at("hostname").get<std::string>(), j.at("pid").get<int>(),
                   j.at("local_rank").get<int>()});
  }
  return out;
}

}  // namespace ditrun::transport
