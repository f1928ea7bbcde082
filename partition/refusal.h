// Why no plan fits, as one line that names each GPU's room, the pinned host RAM needed and
// what would make it fit. Used by solve() before anything is allocated.
#pragma once

#include <string>

#include "partition/solver.h"

namespace ditrun::partition {

std::string explain_no_fit(const SolverInput& input);
[[noreturn]] void refuse_plan(const SolverInput& input);

}  // namespace ditrun::partition
