#include "transport/local_channel.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "runtime/core/error.h"
#include "transport/address_checks.h"

namespace ditrun::transport {
namespace {

bool matches(const Message& m, int peer, int tag) {
  return (peer == kAnySource || m.source == peer) && (tag == kAnyTag || m.tag == tag);
}

struct Wanted {
  int peer = 0, tag = 0;
};

// What the ranks share. One mailbox per destination keeps arrival order, so the first match
// for a (source, tag) is always the oldest one sent: that is the ordering guarantee.
struct Mailboxes {
  explicit Mailboxes(int ranks) : inbox(size_t(ranks)), alive(size_t(ranks), true), waiting(size_t(ranks)) {}

  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::deque<Message>> inbox;
  std::vector<bool> alive;
  // What each rank blocked in recv is waiting for. A sender clears the entry when it delivers
  // a match, so a rank about to be woken never counts as stuck.
  std::vector<std::optional<Wanted>> waiting;
  // Set once every live rank is waiting with nothing to receive; each of them then fails.
  std::optional<std::string> deadlock;

  int ranks() const { return int(inbox.size()); }

  std::deque<Message>::iterator find(int rank, int peer, int tag) {
    auto& box = inbox[size_t(rank)];
    return std::find_if(box.begin(), box.end(), [&](const Message& m) { return matches(m, peer, tag); });
  }

  // True when no message matching (peer, tag) can still arrive at `rank`: the peer, or for
  // kAnySource every other rank, is gone. (The rank itself is blocked, so it cannot send.)
  bool senders_gone(int rank, int peer) const {
    if (peer != kAnySource) return !alive[size_t(peer)];
    for (int r = 0; r < ranks(); ++r)
      if (r != rank && alive[size_t(r)]) return false;
    return true;
  }

  bool all_live_ranks_waiting() const {
    for (int r = 0; r < ranks(); ++r)
      if (alive[size_t(r)] && !waiting[size_t(r)]) return false;
    return true;
  }

  std::string describe_waits() const {
    std::string out;
    for (int r = 0; r < ranks(); ++r) {
      if (!waiting[size_t(r)]) continue;
      out += fmt::format("{}rank {} waits for {} {}", out.empty() ? "" : "; ", r, peer_label(waiting[size_t(r)]->peer),
                         tag_label(waiting[size_t(r)]->tag));
    }
    return out;
  }
};

class LocalChannel final : public Channel {
 public:
  LocalChannel(std::shared_ptr<Mailboxes> boxes, int rank) : boxes_(std::move(boxes)), rank_(rank) {}

  ~LocalChannel() override {
    std::lock_guard lock(boxes_->mutex);
    boxes_->alive[size_t(rank_)] = false;
    boxes_->waiting[size_t(rank_)].reset();
    boxes_->changed.notify_all();
  }

  int rank() const override { return rank_; }
  int size() const override { return boxes_->ranks(); }
  std::string name() const override { return "local"; }

  void send(int peer, int tag, std::vector<uint8_t> bytes) override {
    check_peer(*this, "send", peer, false);
    check_tag(*this, "send", tag, false);
    std::lock_guard lock(boxes_->mutex);
    if (!boxes_->alive[size_t(peer)])
      fail("local channel rank {}: send to rank {} tag {}: rank {}'s channel was destroyed", rank_, peer, tag, peer);
    auto& wanted = boxes_->waiting[size_t(peer)];
    if (wanted && (wanted->peer == kAnySource || wanted->peer == rank_) && (wanted->tag == kAnyTag || wanted->tag == tag))
      wanted.reset();
    boxes_->inbox[size_t(peer)].push_back(Message{rank_, tag, std::move(bytes)});
    boxes_->changed.notify_all();
  }

  Message recv(int peer, int tag) override {
    check_peer(*this, "recv", peer, true);
    check_tag(*this, "recv", tag, true);
    std::unique_lock lock(boxes_->mutex);
    auto& me = boxes_->waiting[size_t(rank_)];
    for (;;) {
      if (auto it = boxes_->find(rank_, peer, tag); it != boxes_->inbox[size_t(rank_)].end()) {
        Message m = std::move(*it);
        boxes_->inbox[size_t(rank_)].erase(it);
        me.reset();
        return m;
      }
      if (boxes_->senders_gone(rank_, peer)) {
        me.reset();
        fail("local channel rank {}: recv from {} {}: {} destroyed its channel without sending a match", rank_,
             peer_label(peer), tag_label(tag), peer == kAnySource ? "every other rank" : peer_label(peer));
      }
      me = Wanted{peer, tag};
      if (!boxes_->deadlock && boxes_->all_live_ranks_waiting()) {
        boxes_->deadlock = boxes_->describe_waits();
        boxes_->changed.notify_all();
      }
      if (boxes_->deadlock) {
        me.reset();
        fail("local channel rank {}: recv from {} {}: deadlock, every live rank waits with nothing to receive ({})",
             rank_, peer_label(peer), tag_label(tag), *boxes_->deadlock);
      }
      boxes_->changed.wait(lock);
    }
  }

  std::optional<Envelope> probe(int peer, int tag) override {
    check_peer(*this, "probe", peer, true);
    check_tag(*this, "probe", tag, true);
    std::lock_guard lock(boxes_->mutex);
    const auto it = boxes_->find(rank_, peer, tag);
    if (it == boxes_->inbox[size_t(rank_)].end()) return std::nullopt;
    return Envelope{it->source, it->tag, it->bytes.size()};
  }

  // send() hands the bytes to the destination's mailbox before it returns.
  void flush() override {}

 private:
  std::shared_ptr<Mailboxes> boxes_;
  int rank_;
};

}  // namespace

std::vector<std::unique_ptr<Channel>> make_local_channels(int ranks) {
  if (ranks < 1) fail("local channels: {} ranks requested, need at least 1", ranks);
  auto boxes = std::make_shared<Mailboxes>(ranks);
  std::vector<std::unique_ptr<Channel>> channels;
  for (int r = 0; r < ranks; ++r) channels.push_back(std::make_unique<LocalChannel>(boxes, r));
  return channels;
}

}  // namespace ditrun::transport
