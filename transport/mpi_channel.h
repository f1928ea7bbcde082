// A Channel between MPI ranks (processes under mpirun), bytes in host memory. Debian's
// OpenMPI is not CUDA-aware: device tensors go through nccl_channel.h instead.
//
// send() is MPI_Isend of the moved-in buffer, which the channel owns until MPI reports it
// sent (finished sends are reaped on every call; flush() waits for all). recv() takes a
// message of any size: a matched probe (MPI_Mprobe) reads its size, then MPI_Mrecv receives
// exactly that message, even if another thread probes meanwhile. Messages over 2 GiB travel
// as one message of a derived datatype, since MPI counts are int.
#pragma once

#include <memory>

#include "transport/channel.h"
#include "transport/mpi_session.h"

namespace ditrun::transport {

// Collective (every rank calls it): the channel talks on its own duplicate of
// MPI_COMM_WORLD, so its tags never meet other MPI traffic. `session` must outlive it.
// Destroying the channel waits for its sends unless an exception is unwinding, when the
// unsent buffers are abandoned (leaked) rather than freed under MPI's feet.
std::unique_ptr<Channel> make_mpi_channel(MpiSession& session);

}  // namespace ditrun::transport
