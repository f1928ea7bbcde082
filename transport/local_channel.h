// Ranks that are threads of one process, sharing mailboxes: the distributed logic (pipeline
// schedules, the coordinator's protocol) runs in unit tests without mpirun.
//
// A recv that can never be satisfied fails instead of hanging:
//   - the peer it waits for (every other rank, for kAnySource) has destroyed its channel and
//     left no matching message;
//   - every rank whose channel is alive is blocked in recv with no matching message (a
//     deadlock; each rank's error says what it and the others were waiting for).
#pragma once

#include <memory>
#include <vector>

#include "transport/channel.h"

namespace ditrun::transport {

// One channel per rank 0..ranks-1; hand each to its own thread.
std::vector<std::unique_ptr<Channel>> make_local_channels(int ranks);

}  // namespace ditrun::transport
