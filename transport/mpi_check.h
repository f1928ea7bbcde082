// Turns MPI return codes into ditrun::Error (communicators run with MPI_ERRORS_RETURN, so a
// transport failure comes back as a code instead of aborting the job). Internal to transport/.
#pragma once

#include <fmt/format.h>
#include <mpi.h>

#include <string>

#include "runtime/core/error.h"

namespace ditrun::transport {

// "MPI_ERR_TRUNCATE: message truncated" style text for an MPI error code.
std::string mpi_error_string(int code);

template <class... Args>
void check_mpi(int code, fmt::format_string<Args...> what, Args&&... args) {
  if (code != MPI_SUCCESS) fail("{}: {}", fmt::format(what, std::forward<Args>(args)...), mpi_error_string(code));
}

}  // namespace ditrun::transport
