// The peer and tag checks every Channel implementation makes before touching its transport,
// so a wrong rank or tag is the same one-line error whichever transport runs.
#pragma once

#include <string>
#include <string_view>

namespace ditrun::transport {

class Channel;

// `op` names the call ("send", "recv", "probe") in the error. Wildcards (kAnySource,
// kAnyTag) are accepted only where `wildcards_allowed`.
void check_peer(const Channel& channel, std::string_view op, int peer, bool wildcards_allowed);
void check_tag(const Channel& channel, std::string_view op, int tag, bool wildcards_allowed);

// "rank 2" or "any rank"; "tag 7" or "any tag": for error messages.
std::string peer_label(int peer);
std::string tag_label(int tag);

}  // namespace ditrun::transport
