#include "transport/address_checks.h"

#include <fmt/format.h>

#include "runtime/core/error.h"
#include "transport/channel.h"

namespace ditrun::transport {

void check_peer(const Channel& channel, std::string_view op, int peer, bool wildcards_allowed) {
  if (peer == kAnySource && wildcards_allowed) return;
  if (peer < 0 || peer >= channel.size())
    fail("{} channel rank {}: {} with peer {}: ranks are 0..{}", channel.name(), channel.rank(), op, peer,
         channel.size() - 1);
}

void check_tag(const Channel& channel, std::string_view op, int tag, bool wildcards_allowed) {
  if (tag == kAnyTag && wildcards_allowed) return;
  if (tag < 0 || tag > kMaxTag)
    fail("{} channel rank {}: {} with tag {}: tags are 0..{}", channel.name(), channel.rank(), op, tag, kMaxTag);
}

std::string peer_label(int peer) { return peer == kAnySource ? "any rank" : fmt::format("rank {}", peer); }
std::string tag_label(int tag) { return tag == kAnyTag ? "any tag" : fmt::format("tag {}", tag); }

}  // namespace ditrun::transport
