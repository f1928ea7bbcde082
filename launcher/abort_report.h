// What rank 0 says when mpirun ends a run early. When any rank dies, mpirun sends SIGTERM to
// the others before killing them; rank 0's handler then writes one message naming the ranks
// on its node that are gone and the jobs that were in flight (and on which ranks), so the
// user knows what was lost and that --resume renders exactly those. Everything the handler
// touches is prepared beforehand: it only calls kill(pid, 0) and write(2), which are safe in a
// signal handler.
#pragma once

#include <string>
#include <vector>

#include "transport/mpi_session.h"

namespace ditrun::launcher {

// Installs the SIGTERM handler on this rank; `ranks` are every rank of the run (their pids on
// this rank's host are checked for life when the signal comes).
void install_abort_report(const std::vector<transport::RankInfo>& ranks, const std::string& hostname);

// The text after "jobs in flight: ", kept current by the coordinator.
void set_jobs_in_flight(const std::string& text);

}  // namespace ditrun::launcher
