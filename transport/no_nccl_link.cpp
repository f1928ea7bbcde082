// Builds without NCCL (no CUDA): the device link cannot exist; its factory says so, on every
// rank alike.
#include "runtime/core/error.h"
#include "transport/device_link.h"

namespace ditrun::transport {

std::unique_ptr<DeviceLink> make_nccl_link(const MpiSession&) {
  fail("device-to-device transfers need NCCL, and this build has none");
}

}  // namespace ditrun::transport
