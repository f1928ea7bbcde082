// Collectives over a group of a channel's ranks (the ranks that share one job's tokens, or its
// CFG halves): all-to-all, all-gather and gather, built on the channel's point-to-point
// messages, so they run alike on every Channel (ranks as threads, mpirun processes). Each
// collective uses the group's own tag, which no other traffic of the run uses, and messages
// between two ranks on one tag keep their order: consecutive collectives cannot mix, and the
// run's protocol messages are never taken for a collective's.
//
// Every member must call the same collectives in the same order (the usual MPI rule); a
// member that is gone turns the others' receive into the channel's error naming it.
#pragma once

#include <cstdint>
#include <vector>

#include "transport/channel.h"

namespace ditrun::transport {

using Bytes = std::vector<uint8_t>;

class RankGroup {
 public:
  // `members`: distinct ranks of `channel`, this rank among them, the same list in the same
  // order on every member. Fails naming what is wrong.
  RankGroup(Channel& channel, std::vector<int> members, int tag);

  int size() const { return int(members_.size()); }
  int index() const { return index_; }  // this rank's position in members
  int member(int i) const { return members_[size_t(i)]; }
  const std::vector<int>& members() const { return members_; }

  // `to[j]` goes to member j; returns what each member sent here (from[i] from member i).
  std::vector<Bytes> all_to_all(std::vector<Bytes> to);
  // Every member's `mine`, in member order, on every member.
  std::vector<Bytes> all_gather(Bytes mine);
  // Every member's `mine` on member `root` (in member order); empty elsewhere.
  std::vector<Bytes> gather(Bytes mine, int root);
  // Around the ring of members: `mine` goes to the next member (index + 1, the last to the
  // first); returns what the previous one sent.
  Bytes shift(Bytes mine);

  Channel& channel() const { return channel_; }
  int tag() const { return tag_; }

 private:
  Channel& channel_;
  std::vector<int> members_;
  int tag_;
  int index_ = -1;
};

}  // namespace ditrun::transport
