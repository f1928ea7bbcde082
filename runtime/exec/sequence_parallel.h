// Sequence parallelism: the ranks of a group share one job's tokens. After the prologue each
// rank keeps a contiguous share of the token rows (the model's StateLayout: image or video
// tokens split, a text prefix kept whole), runs every block on its share, and before the
// epilogue the shares come back together on the group's first member.
//
// Only self-attention needs the whole sequence. With H heads over N = U x R ranks:
//   Ulysses (degree U)  an all-to-all within groups of U consecutive shares swaps the token
//                       split for a head split: each rank then holds its group's U shares of
//                       tokens for H/U heads; a second all-to-all swaps back, and the text
//                       prefix's rows for the other heads come back by an all-gather.
//   ring (degree R)     the R groups' blocks of keys and values travel around a ring of the
//                       ranks holding the same heads; each rank attends with its queries to
//                       one block at a time and merges the partial results by their
//                       log-sum-exp (Backend::attention_lse), so no rank holds more than two
//                       blocks of keys and values.
// By default U is the largest degree that divides both N and H (all Ulysses when H allows,
// all ring when they share no factor: 3 ranks on 4 heads); a requested ring degree R sets U =
// N / R, which must divide H. Ring attention needs a backend with attention_lse (the CPU
// backend, and the CUDA backend in f32 mode).
// Data crosses ranks through host memory (transport::RankGroup); on the CUDA backend that is a
// download and an upload around each exchange (the NCCL collectives of DeviceLink are built
// for the device path, not yet wired here).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <utility>

#include "runtime/exec/model.h"
#include "transport/rank_group.h"

namespace ditrun::runtime {

class SequenceParallel {
 public:
  // `ring`: the ring degree R (N must be a multiple of it); 0 chooses by the head count. The
  // sub-groups of Ulysses and of the ring use the group's tag + 100 and + 200.
  explicit SequenceParallel(transport::RankGroup& group, int ring = 0);

  int degree() const { return group_.size(); }
  int index() const { return group_.index(); }

  // Keeps this rank's rows of the layout's token tensors (the whole state arrives on every
  // member) and marks the state as split. Fails when the group is larger than the tokens.
  void split(Backend& backend, const StateLayout& layout, ActivationState& state);
  // Every member's rows back on member 0, in order (returns true there, with the whole state);
  // the other members return false and their state is left empty.
  bool gather(Backend& backend, const StateLayout& layout, ActivationState& state);

  // softmax(q kᵀ/√D) v over the whole sequence for this rank's rows: q, k, v and out
  // [B, prefix + rows, H·D] of a split state. q, k and v are consumed: the Ulysses exchange may
  // overwrite them (the blocks use them for nothing after attention). `prefix_keys`: the
  // state's text mask (ActivationState::prefix_keys; empty: every prefix row is a key).
  void attention(Backend& backend, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
                 std::span<const int64_t> prefix_keys = {});
  // softmax(q kᵀ/√D) v over the token rows alone (SD3.5 Medium's attn2: the image tokens
  // without the text prefix): q, k, v and out [B, rows, H·D] of a split state, consumed as above.
  void token_attention(Backend& backend, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads);
  // The prefix rows every member keeps whole (the split's layout.prefix).
  int64_t prefix() const { return prefix_; }

  // The degrees attention uses for `heads` heads: {Ulysses U, ring R}, U x R = N. Fails when a
  // requested ring leaves a Ulysses degree that does not divide the heads.
  std::pair<int, int> degrees(int64_t heads) const;

  // What the exchanges cost so far on this rank (for benchmarks and the log).
  double exchange_seconds() const { return exchange_seconds_; }
  uint64_t exchanged_bytes() const { return exchanged_bytes_; }

 private:
  // Attention over a block of this rank's queries: (q, k, v, out, heads); the key rows past
  // the valid ones are masked inside.
  using Attend = std::function<void(const Tensor&, const Tensor&, const Tensor&, Tensor&, int64_t)>;
  // attention and token_attention: q, k, v and out hold `prefix` rows (the layout's, or none)
  // and this rank's token rows.
  void attend(Backend& backend, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
              int64_t prefix, std::span<const int64_t> prefix_keys);
  // The Ulysses exchange over `group` (U consecutive shares) around `attend`, which sees this
  // group's P + U·S rows for H/U heads.
  void ulysses(Backend& backend, transport::RankGroup& group, const Tensor& q, const Tensor& k, const Tensor& v,
               Tensor& out, int64_t heads, int64_t P, const Attend& attend);
  // Ring attention over `ring` (the ranks holding the same heads, one per Ulysses group): q, k,
  // v and out hold P + U·S rows of the ring member's block.
  void ring_attention(Backend& backend, transport::RankGroup& ring, const Tensor& q, const Tensor& k, const Tensor& v,
                      Tensor& out, int64_t heads, int ulysses, int64_t P, std::span<const int64_t> prefix_keys);
  // Valid token rows of the block of Ulysses group g (U shares of rows_ each; U = 1: rank g's).
  int64_t valid_rows(int64_t g, int ulysses) const;
  void make_subgroups(int ulysses);
  std::vector<transport::Bytes> all_to_all(transport::RankGroup& group, std::vector<transport::Bytes> parts);
  std::vector<transport::Bytes> all_gather(transport::RankGroup& group, transport::Bytes mine);
  transport::Bytes shift(transport::RankGroup& group, transport::Bytes mine);
  // Runs one exchange, counting its time and the bytes this rank sends.
  template <class Exchange>
  auto timed(uint64_t sent_bytes, Exchange&& exchange);

  transport::RankGroup& group_;
  int ring_request_ = 0;
  int subgroups_for_ = 0;  // the Ulysses degree the sub-groups were made for (0: none yet)
  std::optional<transport::RankGroup> ulysses_group_, ring_group_;
  int64_t prefix_ = 0, tokens_ = 0, rows_ = 0;  // rows_: token rows per rank, padding included
  double exchange_seconds_ = 0;
  uint64_t exchanged_bytes_ = 0;
};

// The blocks' self-attention: over the whole sequence through the state's group when its
// tokens are split (q, k and v are then consumed), else the backend's attention; padded
// prefix rows under the state's text mask are not keys (prefix_attention.h).
void self_attention(Backend& backend, const ActivationState& state, const Tensor& q, const Tensor& k, const Tensor& v,
                    Tensor& out, int64_t heads);
// Self-attention over the state's token rows alone, without the prefix (q, k, v, out [B,
// tokens, H·D]): the same split as self_attention.
void token_self_attention(Backend& backend, const ActivationState& state, const Tensor& q, const Tensor& k,
                          const Tensor& v, Tensor& out, int64_t heads);

}  // namespace ditrun::runtime
