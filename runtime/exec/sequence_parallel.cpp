#include "runtime/exec/sequence_parallel.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "runtime/backend/host_copy.h"
#include "runtime/core/error.h"
#include "runtime/exec/prefix_attention.h"

namespace ditrun::runtime {
namespace {

using transport::Bytes;

Bytes to_bytes(const std::vector<float>& values) {
  Bytes out(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::span<const float> floats(const Bytes& bytes) {
  return {reinterpret_cast<const float*>(bytes.data()), bytes.size() / sizeof(float)};
}

// Rows [row, row + count) of batch item b of a contiguous [B, rows, cols] array, columns
// [col, col + width), appended to `out`.
void append_rows(std::vector<float>& out, std::span<const float> from, int64_t rows, int64_t cols, int64_t b,
                 int64_t row, int64_t count, int64_t col, int64_t width) {
  for (int64_t r = row; r < row + count; ++r) {
    const float* src = from.data() + (b * rows + r) * cols + col;
    out.insert(out.end(), src, src + width);
  }
}

// Writes `count` rows of `width` values from `from` (read in order from *offset) into rows
// [row, row + count), columns [col, col + width) of batch item b of a [B, rows, cols] array.
void place_rows(std::vector<float>& to, int64_t rows, int64_t cols, int64_t b, int64_t row, int64_t count, int64_t col,
                int64_t width, std::span<const float> from, size_t& offset) {
  for (int64_t r = row; r < row + count; ++r) {
    if (offset + size_t(width) > from.size()) fail("sequence parallel: a rank sent {} values, fewer than expected", from.size());
    std::copy_n(from.data() + offset, width, to.data() + (b * rows + r) * cols + col);
    offset += size_t(width);
  }
}

// The [B, rows, cols] view of a 3-D tensor, or a one-line error.
void check_rows_tensor(const std::string& what, const Tensor& t, int64_t rows) {
  if (t.ndim() != 3 || t.dim(1) != rows)
    fail("sequence parallel: {} has shape {}, expected [B, {}, C]", what, shape_string(t.shape()), rows);
}

}  // namespace

SequenceParallel::SequenceParallel(transport::RankGroup& group, int ring) : group_(group), ring_request_(ring) {
  if (ring < 0 || (ring > 0 && group.size() % ring != 0))
    fail("sequence parallel: a ring of {} does not divide the {} ranks of the group", ring, group.size());
}

std::pair<int, int> SequenceParallel::degrees(int64_t heads) const {
  const int n = degree();
  if (ring_request_ > 0) {
    const int ulysses = n / ring_request_;
    if (heads % ulysses != 0)
      fail("sequence parallel over {} ranks with a ring of {} leaves Ulysses over {}, which does not divide the {} "
           "heads",
           n, ring_request_, ulysses, heads);
    return {ulysses, ring_request_};
  }
  const int ulysses = int(std::gcd(int64_t(n), heads));
  return {ulysses, n / ulysses};
}

void SequenceParallel::make_subgroups(int ulysses) {
  if (subgroups_for_ == ulysses) return;
  const int n = degree(), ring = n / ulysses, me = index(), u = me % ulysses, g = me / ulysses;
  std::vector<int> across, around;
  for (int i = 0; i < ulysses; ++i) across.push_back(group_.member(g * ulysses + i));
  for (int j = 0; j < ring; ++j) around.push_back(group_.member(j * ulysses + u));
  ulysses_group_.emplace(group_.channel(), across, group_.tag() + 100);
  ring_group_.emplace(group_.channel(), around, group_.tag() + 200);
  subgroups_for_ = ulysses;
}

int64_t SequenceParallel::valid_rows(int64_t g, int ulysses) const {
  const int64_t block = int64_t(ulysses) * rows_;
  return std::clamp<int64_t>(tokens_ - g * block, 0, block);
}

template <class Exchange>
auto SequenceParallel::timed(uint64_t sent_bytes, Exchange&& exchange) {
  const auto start = std::chrono::steady_clock::now();
  exchanged_bytes_ += sent_bytes;
  auto from = exchange();
  exchange_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return from;
}

std::vector<Bytes> SequenceParallel::all_to_all(transport::RankGroup& group, std::vector<Bytes> parts) {
  uint64_t sent = 0;
  for (int j = 0; j < group.size(); ++j)
    if (j != group.index()) sent += parts[size_t(j)].size();
  return timed(sent, [&] { return group.all_to_all(std::move(parts)); });
}

std::vector<Bytes> SequenceParallel::all_gather(transport::RankGroup& group, Bytes mine) {
  const uint64_t sent = mine.size() * uint64_t(group.size() - 1);
  return timed(sent, [&] { return group.all_gather(std::move(mine)); });
}

Bytes SequenceParallel::shift(transport::RankGroup& group, Bytes mine) {
  const uint64_t sent = group.size() > 1 ? mine.size() : 0;
  return timed(sent, [&] { return group.shift(std::move(mine)); });
}

void SequenceParallel::split(Backend& be, const StateLayout& layout, ActivationState& state) {
  const int64_t n = degree();
  if (layout.token_tensors.empty()) fail("sequence parallel: the model names no token rows to split");
  if (layout.tokens < n)
    fail("sequence parallel over {} ranks needs at least {} tokens, the job has {}: use fewer ranks", n, n,
         layout.tokens);
  prefix_ = layout.prefix;
  tokens_ = layout.tokens;
  rows_ = (tokens_ + n - 1) / n;
  const int64_t first = index() * rows_, real = valid_rows(index(), 1);
  for (const std::string& name : layout.token_tensors) {
    const Tensor& t = state.at(name);
    check_rows_tensor("'" + name + "'", t, prefix_ + tokens_);
    const int64_t B = t.dim(0), C = t.dim(2), full = prefix_ + tokens_, mine = prefix_ + rows_;
    const HostTensor whole = to_host(be, t);
    std::vector<float> local;
    local.reserve(size_t(B * mine * C));
    for (int64_t b = 0; b < B; ++b) {
      append_rows(local, whole.data, full, C, b, 0, prefix_, 0, C);
      append_rows(local, whole.data, full, C, b, prefix_ + first, real, 0, C);
      local.resize(size_t((b + 1) * mine * C), 0.0f);  // padding rows: zeros, masked as keys
    }
    state.set(name, to_backend(be, local, {B, mine, C}));
  }
  if (!layout.tokens_int.empty()) state.set_int(layout.tokens_int, rows_);
  state.set_sequence(this);
}

bool SequenceParallel::gather(Backend& be, const StateLayout& layout, ActivationState& state) {
  if (state.sequence() != this) fail("sequence parallel: gather of a state that this group did not split");
  const int64_t n = degree();
  for (const std::string& name : layout.token_tensors) {
    const Tensor& t = state.at(name);
    check_rows_tensor("'" + name + "'", t, prefix_ + rows_);
    const int64_t B = t.dim(0), C = t.dim(2), mine = prefix_ + rows_, full = prefix_ + tokens_;
    const HostTensor local = to_host(be, t);
    std::vector<float> part;
    for (int64_t b = 0; b < B; ++b) append_rows(part, local.data, mine, C, b, prefix_, valid_rows(index(), 1), 0, C);
    const std::vector<Bytes> parts = group_.gather(to_bytes(part), 0);
    if (index() != 0) continue;
    std::vector<float> whole(size_t(B * full * C));
    for (int64_t b = 0; b < B; ++b) {
      size_t offset = size_t(b * mine * C);
      place_rows(whole, full, C, b, 0, prefix_, 0, C, local.data, offset);
    }
    for (int64_t i = 0; i < n; ++i) {
      size_t offset = 0;
      for (int64_t b = 0; b < B; ++b)
        place_rows(whole, full, C, b, prefix_ + i * rows_, valid_rows(i, 1), 0, C, floats(parts[size_t(i)]), offset);
    }
    state.set(name, to_backend(be, whole, {B, full, C}));
  }
  state.set_sequence(nullptr);
  if (index() != 0) {
    state = ActivationState{};
    return false;
  }
  if (!layout.tokens_int.empty()) state.set_int(layout.tokens_int, tokens_);
  return true;
}

void SequenceParallel::attention(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                                 int64_t heads, std::span<const int64_t> prefix_keys) {
  attend(be, q, k, v, out, heads, prefix_, prefix_keys);
}

void SequenceParallel::token_attention(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                                       int64_t heads) {
  attend(be, q, k, v, out, heads, 0, {});
}

void SequenceParallel::attend(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
                              int64_t prefix, std::span<const int64_t> prefix_keys) {
  const int64_t rows = prefix + rows_;
  check_rows_tensor("attention q", q, rows);
  check_rows_tensor("attention k", k, rows);
  check_rows_tensor("attention v", v, rows);
  check_rows_tensor("attention out", out, rows);
  if (heads <= 0 || q.dim(2) % heads != 0) fail("sequence parallel: {} heads do not divide width {}", heads, q.dim(2));
  // Plain ints, not a structured binding: the lambdas below capture them (clang 14 cannot).
  const std::pair<int, int> chosen = degrees(heads);
  const int ulysses_degree = chosen.first, ring_degree = chosen.second;
  if (ring_degree > 1 && !be.has_attention_lse())
    fail("sequence parallel over {} ranks on {} heads needs ring attention (a ring of {}), which the {} backend does "
         "not have yet: use a number of ranks that divides the heads",
         degree(), heads, ring_degree, be.name());
  make_subgroups(ulysses_degree);
  if (ring_degree == 1) {  // all Ulysses: the whole sequence for H/N heads on every rank
    ulysses(be, *ulysses_group_, q, k, v, out, heads, prefix, [&](const Tensor& hq, const Tensor& hk, const Tensor& hv,
                                                                  Tensor& ho, int64_t h) {
      prefix_masked_attention(be, hq, hk, hv, ho, h, prefix, tokens_, prefix_keys);  // padding rows are not keys
    });
  } else if (ulysses_degree == 1) {  // all ring: this rank's rows are its block
    ring_attention(be, *ring_group_, q, k, v, out, heads, 1, prefix, prefix_keys);
  } else {
    ulysses(be, *ulysses_group_, q, k, v, out, heads, prefix, [&](const Tensor& hq, const Tensor& hk, const Tensor& hv,
                                                                  Tensor& ho, int64_t h) {
      ring_attention(be, *ring_group_, hq, hk, hv, ho, h, ulysses_degree, prefix, prefix_keys);
    });
  }
}

void SequenceParallel::ulysses(Backend& be, transport::RankGroup& group, const Tensor& q, const Tensor& k,
                               const Tensor& v, Tensor& out, int64_t heads, int64_t P, const Attend& attend) {
  const int64_t n = group.size(), me = group.index(), B = q.dim(0), C = q.dim(2), S = rows_;
  const int64_t W = C / heads * (heads / n);  // the columns of one rank's heads
  const int64_t local_rows = P + S, full_rows = P + n * S;
  const HostTensor hq = to_host(be, q), hk = to_host(be, k), hv = to_host(be, v);

  // Token split -> head split: member j gets this rank's token rows of its heads.
  std::vector<Bytes> parts(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    std::vector<float> part;
    part.reserve(size_t(3 * B * S * W));
    for (const HostTensor* t : {&hq, &hk, &hv})
      for (int64_t b = 0; b < B; ++b) append_rows(part, t->data, local_rows, C, b, P, S, j * W, W);
    parts[size_t(j)] = to_bytes(part);
  }
  const std::vector<Bytes> from = all_to_all(group, std::move(parts));
  std::vector<float> fq(size_t(B * full_rows * W)), fk(fq.size()), fv(fq.size());
  std::vector<float>* full[3] = {&fq, &fk, &fv};
  const HostTensor* local[3] = {&hq, &hk, &hv};
  for (int t = 0; t < 3; ++t) {
    // The text prefix is on every rank: this rank's heads of it need no exchange.
    std::vector<float> prefix;
    for (int64_t b = 0; b < B; ++b) append_rows(prefix, local[t]->data, local_rows, C, b, 0, P, me * W, W);
    size_t offset = 0;
    for (int64_t b = 0; b < B; ++b) place_rows(*full[t], full_rows, W, b, 0, P, 0, W, prefix, offset);
  }
  for (int64_t i = 0; i < n; ++i) {
    size_t offset = 0;
    for (int t = 0; t < 3; ++t)
      for (int64_t b = 0; b < B; ++b) place_rows(*full[t], full_rows, W, b, P + i * S, S, 0, W, floats(from[size_t(i)]), offset);
  }
  // Without a prefix the head split holds as many values as the token split, so q, k and v
  // take their exchanged form in place (they are consumed: see the header) and the exchange
  // costs the device one extra [B, L/N, C] buffer instead of four.
  const auto head_split = [&](const Tensor& local, const std::vector<float>& values) {
    const Shape shape{B, full_rows, W};
    if (P == 0 && local.contiguous()) {
      Tensor t = local.view(shape);
      be.upload(values, t, be.compute_stream());
      return t;
    }
    return to_backend(be, values, shape);
  };
  const Tensor dq = head_split(q, fq), dk = head_split(k, fk), dv = head_split(v, fv);
  Tensor dout = be.empty({B, full_rows, W});
  attend(dq, dk, dv, dout, heads / n);
  const HostTensor attended = to_host(be, dout);

  // Head split -> token split: member j gets its token rows of this rank's heads.
  std::vector<Bytes> back(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    std::vector<float> part;
    part.reserve(size_t(B * S * W));
    for (int64_t b = 0; b < B; ++b) append_rows(part, attended.data, full_rows, W, b, P + j * S, S, 0, W);
    back[size_t(j)] = to_bytes(part);
  }
  const std::vector<Bytes> heads_from = all_to_all(group, std::move(back));
  std::vector<float> result(size_t(B * local_rows * C));
  for (int64_t i = 0; i < n; ++i) {
    size_t offset = 0;
    for (int64_t b = 0; b < B; ++b) place_rows(result, local_rows, C, b, P, S, i * W, W, floats(heads_from[size_t(i)]), offset);
  }
  if (P > 0) {  // the prefix's rows of every head, from the rank that attended for it
    std::vector<float> prefix;
    for (int64_t b = 0; b < B; ++b) append_rows(prefix, attended.data, full_rows, W, b, 0, P, 0, W);
    const std::vector<Bytes> prefixes = all_gather(group, to_bytes(prefix));
    for (int64_t i = 0; i < n; ++i) {
      size_t offset = 0;
      for (int64_t b = 0; b < B; ++b) place_rows(result, local_rows, C, b, 0, P, i * W, W, floats(prefixes[size_t(i)]), offset);
    }
  }
  if (out.contiguous()) {
    be.upload(result, out, be.compute_stream());
  } else {  // a view (Flux's single blocks write into [attn | mlp])
    const Tensor attended_rows = to_backend(be, result, {B, local_rows, C});
    be.copy(attended_rows, out);
  }
}

void SequenceParallel::ring_attention(Backend& be, transport::RankGroup& ring, const Tensor& q, const Tensor& k,
                                      const Tensor& v, Tensor& out, int64_t heads, int ulysses, int64_t P,
                                      std::span<const int64_t> prefix_keys) {
  const int64_t R = ring.size(), me = ring.index(), B = q.dim(0), L = q.dim(1), C = q.dim(2);
  const int64_t D = C / heads, block = L - P;  // this member's key rows past the prefix
  // The running result in double: R merges in f32 would add their rounding to the kernel's.
  std::vector<double> acc(size_t(B * L * C), 0.0);
  std::vector<double> acc_lse(size_t(B * L * heads), -std::numeric_limits<double>::infinity());
  Tensor o = be.empty({B, L, C}), lse = be.empty({B, L, heads});
  // Folds a partial result (over some of the keys) into the running one: weights e^(lse − max).
  const auto merge = [&] {
    const HostTensor ho = to_host(be, o), hl = to_host(be, lse);
    for (int64_t row = 0; row < B * L; ++row)
      for (int64_t h = 0; h < heads; ++h) {
        double& a = acc_lse[size_t(row * heads + h)];
        const double t = hl.data[size_t(row * heads + h)];
        if (t == -std::numeric_limits<double>::infinity()) continue;
        const double m = std::max(a, t), wa = std::exp(a - m), wt = std::exp(t - m), sum = wa + wt;
        double* dst = acc.data() + row * C + h * D;
        const float* src = ho.data.data() + row * C + h * D;
        for (int64_t d = 0; d < D; ++d) dst[d] = (dst[d] * wa + double(src[d]) * wt) / sum;
        a = m + std::log(sum);
      }
  };
  // This member's own block, with the text prefix's keys (every rank holds them; they count once).
  prefix_masked_attention(be, q, k, v, o, heads, P, valid_rows(me, ulysses), prefix_keys, &lse);
  merge();
  // The other members' blocks, without the prefix, passed around the ring.
  std::vector<int64_t> kv_lens(static_cast<size_t>(B));
  const HostTensor hk = to_host(be, k), hv = to_host(be, v);
  std::vector<float> mine;
  mine.reserve(size_t(2 * B * block * C));
  for (const HostTensor* t : {&hk, &hv})
    for (int64_t b = 0; b < B; ++b) append_rows(mine, t->data, L, C, b, P, block, 0, C);
  Bytes travelling = to_bytes(mine);
  for (int64_t step = 1; step < R; ++step) {
    travelling = shift(ring, std::move(travelling));
    const int64_t from = (me - step + R) % R, valid = valid_rows(from, ulysses);
    if (valid == 0) continue;  // a block of padding only
    const std::span<const float> values = floats(travelling);
    if (values.size() != size_t(2 * B * block * C))
      fail("ring attention: member {} sent {} values, expected {}", from, values.size(), 2 * B * block * C);
    const Tensor kb = to_backend(be, values.first(size_t(B * block * C)), {B, block, C});
    const Tensor vb = to_backend(be, values.subspan(size_t(B * block * C)), {B, block, C});
    std::fill(kv_lens.begin(), kv_lens.end(), valid);
    be.attention_lse(q, kb, vb, o, lse, heads, kv_lens);
    merge();
  }
  const std::vector<float> merged(acc.begin(), acc.end());
  if (out.contiguous()) {
    be.upload(merged, out, be.compute_stream());
  } else {
    be.copy(to_backend(be, merged, {B, L, C}), out);
  }
}

void self_attention(Backend& be, const ActivationState& state, const Tensor& q, const Tensor& k, const Tensor& v,
                    Tensor& out, int64_t heads) {
  const std::vector<int64_t> keys = state.prefix_keys();
  if (SequenceParallel* group = state.sequence()) {
    if (!keys.empty() && state.prefix_mask_rows() != group->prefix())
      fail("sequence parallel: a text mask over {} rows, but the split keeps a prefix of {}", state.prefix_mask_rows(),
           group->prefix());
    return group->attention(be, q, k, v, out, heads, keys);
  }
  if (keys.empty()) return be.attention(q, k, v, out, heads, {});
  const int64_t prefix = state.prefix_mask_rows();
  prefix_masked_attention(be, q, k, v, out, heads, prefix, k.dim(1) - prefix, keys);
}

void token_self_attention(Backend& be, const ActivationState& state, const Tensor& q, const Tensor& k, const Tensor& v,
                          Tensor& out, int64_t heads) {
  if (SequenceParallel* group = state.sequence()) return group->token_attention(be, q, k, v, out, heads);
  be.attention(q, k, v, out, heads, {});
}

}  // namespace ditrun::runtime
