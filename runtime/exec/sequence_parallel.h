// Sequence parallelism: the ranks of a group share one job's tokens. After the prologue each
// rank keeps a contiguous share of the token rows (the model's StateLayout: image or video
// tokens split, a text prefix kept whole), runs every block on its share, and before the
// epilogue the shares come back together on the group's first member.
//
// Only self-attention needs the whole sequence. Two ways to give it that, chosen by the head
// count H and the group size N:
//   Ulysses (H % N == 0)   an all-to-all swaps the token split for a head split: each rank
//                          attends over all tokens for H/N heads, and a second all-to-all
//                          swaps back; the text prefix's rows for the other heads come back
//                          by an all-gather. Traffic per rank: about 4/N of q, k, v and out.
//   key/value gather       (any H) each rank gathers every rank's k and v rows and attends
//                          with its own queries over all of them. Traffic: (N-1)/N of k and v
//                          per rank, and k and v whole on every rank. It is ring attention's
//                          result without its memory saving (ring is not built yet).
// Tokens that do not divide by N are padded with zero rows at the end of the sequence; the
// padded keys are masked in every attention (kv_lens), so the result is the one-rank result up
// to the order of sums (within 1e-5 in f32).
//
// Data crosses ranks through host memory (transport::RankGroup); on the CUDA backend that is a
// download and an upload around each exchange (the NCCL collectives of DeviceLink are built
// for the device path, not yet wired here).
#pragma once

#include <cstdint>

#include "runtime/exec/model.h"
#include "transport/rank_group.h"

namespace ditrun::runtime {

class SequenceParallel {
 public:
  explicit SequenceParallel(transport::RankGroup& group) : group_(group) {}

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
  // overwrite them (the blocks use them for nothing after attention).
  void attention(Backend& backend, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads);

  // What the exchanges cost so far on this rank (for benchmarks and the log).
  double exchange_seconds() const { return exchange_seconds_; }
  uint64_t exchanged_bytes() const { return exchanged_bytes_; }

 private:
  void ulysses(Backend& backend, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads);
  void gathered_keys(Backend& backend, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads);
  std::vector<transport::Bytes> all_to_all(std::vector<transport::Bytes> parts);
  std::vector<transport::Bytes> all_gather(transport::Bytes mine);

  transport::RankGroup& group_;
  int64_t prefix_ = 0, tokens_ = 0, rows_ = 0;  // rows_: token rows per rank, padding included
  double exchange_seconds_ = 0;
  uint64_t exchanged_bytes_ = 0;
};

// The blocks' self-attention: over the whole sequence through the state's group when its
// tokens are split (q, k and v are then consumed), else the backend's attention as it is.
void self_attention(Backend& backend, const ActivationState& state, const Tensor& q, const Tensor& k, const Tensor& v,
                    Tensor& out, int64_t heads);

}  // namespace ditrun::runtime
