#include "transport/rank_group.h"

#include <algorithm>
#include <set>

#include "runtime/core/error.h"

namespace ditrun::transport {

RankGroup::RankGroup(Channel& channel, std::vector<int> members, int tag)
    : channel_(channel), members_(std::move(members)), tag_(tag) {
  if (members_.empty()) fail("rank group: no members");
  if (tag < 0 || tag > kMaxTag) fail("rank group: tag {} is outside 0..{}", tag, kMaxTag);
  if (std::set<int>(members_.begin(), members_.end()).size() != members_.size())
    fail("rank group: a rank is listed twice");
  for (size_t i = 0; i < members_.size(); ++i) {
    if (members_[i] < 0 || members_[i] >= channel.size())
      fail("rank group: rank {} is not a rank of the channel's {}", members_[i], channel.size());
    if (members_[i] == channel.rank()) index_ = int(i);
  }
  if (index_ < 0) fail("rank group: rank {} is not a member", channel.rank());
}

std::vector<Bytes> RankGroup::all_to_all(std::vector<Bytes> to) {
  if (int(to.size()) != size()) fail("all_to_all: {} parts for a group of {}", to.size(), size());
  // Every send leaves at once (Channel::send does not wait), so posting all of them before the
  // first receive cannot deadlock.
  for (int j = 0; j < size(); ++j)
    if (j != index_) channel_.send(members_[size_t(j)], tag_, std::move(to[size_t(j)]));
  std::vector<Bytes> from(static_cast<size_t>(size()));
  from[size_t(index_)] = std::move(to[size_t(index_)]);
  for (int i = 0; i < size(); ++i)
    if (i != index_) from[size_t(i)] = channel_.recv(members_[size_t(i)], tag_).bytes;
  return from;
}

std::vector<Bytes> RankGroup::all_gather(Bytes mine) {
  std::vector<Bytes> to(size_t(size()), mine);
  return all_to_all(std::move(to));
}

std::vector<Bytes> RankGroup::gather(Bytes mine, int root) {
  if (root < 0 || root >= size()) fail("gather: root {} is not a member index (group of {})", root, size());
  if (index_ != root) {
    channel_.send(members_[size_t(root)], tag_, std::move(mine));
    return {};
  }
  std::vector<Bytes> from(static_cast<size_t>(size()));
  from[size_t(root)] = std::move(mine);
  for (int i = 0; i < size(); ++i)
    if (i != root) from[size_t(i)] = channel_.recv(members_[size_t(i)], tag_).bytes;
  return from;
}

Bytes RankGroup::shift(Bytes mine) {
  if (size() == 1) return mine;
  channel_.send(members_[size_t((index_ + 1) % size())], tag_, std::move(mine));
  return channel_.recv(members_[size_t((index_ + size() - 1) % size())], tag_).bytes;
}

}  // namespace ditrun::transport
