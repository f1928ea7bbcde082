#include "runtime/exec/sequence_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "runtime/backend/host_copy.h"
#include "runtime/core/error.h"

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

std::vector<Bytes> SequenceParallel::all_to_all(std::vector<Bytes> parts) {
  const auto start = std::chrono::steady_clock::now();
  for (int j = 0; j < degree(); ++j)
    if (j != index()) exchanged_bytes_ += parts[size_t(j)].size();
  auto from = group_.all_to_all(std::move(parts));
  exchange_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return from;
}

std::vector<Bytes> SequenceParallel::all_gather(Bytes mine) {
  const auto start = std::chrono::steady_clock::now();
  exchanged_bytes_ += mine.size() * size_t(degree() - 1);
  auto from = group_.all_gather(std::move(mine));
  exchange_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return from;
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
  const int64_t first = index() * rows_, real = std::clamp<int64_t>(tokens_ - first, 0, rows_);
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
  const auto real_rows = [&](int64_t i) { return std::clamp<int64_t>(tokens_ - i * rows_, 0, rows_); };
  for (const std::string& name : layout.token_tensors) {
    const Tensor& t = state.at(name);
    check_rows_tensor("'" + name + "'", t, prefix_ + rows_);
    const int64_t B = t.dim(0), C = t.dim(2), mine = prefix_ + rows_, full = prefix_ + tokens_;
    const HostTensor local = to_host(be, t);
    std::vector<float> part;
    for (int64_t b = 0; b < B; ++b) append_rows(part, local.data, mine, C, b, prefix_, real_rows(index()), 0, C);
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
        place_rows(whole, full, C, b, prefix_ + i * rows_, real_rows(i), 0, C, floats(parts[size_t(i)]), offset);
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
                                 int64_t heads) {
  const int64_t rows = prefix_ + rows_;
  check_rows_tensor("attention q", q, rows);
  check_rows_tensor("attention k", k, rows);
  check_rows_tensor("attention v", v, rows);
  check_rows_tensor("attention out", out, rows);
  if (heads <= 0 || q.dim(2) % heads != 0) fail("sequence parallel: {} heads do not divide width {}", heads, q.dim(2));
  if (heads % degree() == 0)
    ulysses(be, q, k, v, out, heads);
  else
    gathered_keys(be, q, k, v, out, heads);
}

void SequenceParallel::ulysses(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                               int64_t heads) {
  const int64_t n = degree(), me = index(), B = q.dim(0), C = q.dim(2), P = prefix_, S = rows_;
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
  const std::vector<Bytes> from = all_to_all(std::move(parts));
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
  const std::vector<int64_t> kv_lens(size_t(B), P + tokens_);  // the padding rows are not keys
  be.attention(dq, dk, dv, dout, heads / n, kv_lens);
  const HostTensor attended = to_host(be, dout);

  // Head split -> token split: member j gets its token rows of this rank's heads.
  std::vector<Bytes> back(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    std::vector<float> part;
    part.reserve(size_t(B * S * W));
    for (int64_t b = 0; b < B; ++b) append_rows(part, attended.data, full_rows, W, b, P + j * S, S, 0, W);
    back[size_t(j)] = to_bytes(part);
  }
  const std::vector<Bytes> heads_from = all_to_all(std::move(back));
  std::vector<float> result(size_t(B * local_rows * C));
  for (int64_t i = 0; i < n; ++i) {
    size_t offset = 0;
    for (int64_t b = 0; b < B; ++b) place_rows(result, local_rows, C, b, P, S, i * W, W, floats(heads_from[size_t(i)]), offset);
  }
  if (P > 0) {  // the prefix's rows of every head, from the rank that attended for it
    std::vector<float> prefix;
    for (int64_t b = 0; b < B; ++b) append_rows(prefix, attended.data, full_rows, W, b, 0, P, 0, W);
    const std::vector<Bytes> prefixes = all_gather(to_bytes(prefix));
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

void SequenceParallel::gathered_keys(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                                     int64_t heads) {
  const int64_t n = degree(), B = q.dim(0), C = q.dim(2), P = prefix_, S = rows_;
  const int64_t local_rows = P + S, full_rows = P + n * S;
  const HostTensor hk = to_host(be, k), hv = to_host(be, v);
  std::vector<float> mine;
  mine.reserve(size_t(2 * B * S * C));
  for (const HostTensor* t : {&hk, &hv})
    for (int64_t b = 0; b < B; ++b) append_rows(mine, t->data, local_rows, C, b, P, S, 0, C);
  const std::vector<Bytes> all = all_gather(to_bytes(mine));
  std::vector<float> fk(size_t(B * full_rows * C)), fv(fk.size());
  std::vector<float>* full[2] = {&fk, &fv};
  const HostTensor* local[2] = {&hk, &hv};
  for (int t = 0; t < 2; ++t) {
    size_t offset = 0;
    for (int64_t b = 0; b < B; ++b) {
      offset = size_t(b * local_rows * C);
      place_rows(*full[t], full_rows, C, b, 0, P, 0, C, local[t]->data, offset);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    size_t offset = 0;
    for (int t = 0; t < 2; ++t)
      for (int64_t b = 0; b < B; ++b) place_rows(*full[t], full_rows, C, b, P + i * S, S, 0, C, floats(all[size_t(i)]), offset);
  }
  const Tensor dk = to_backend(be, fk, {B, full_rows, C}), dv = to_backend(be, fv, {B, full_rows, C});
  const std::vector<int64_t> kv_lens(size_t(B), P + tokens_);
  be.attention(q, dk, dv, out, heads, kv_lens);
}

void self_attention(Backend& be, const ActivationState& state, const Tensor& q, const Tensor& k, const Tensor& v,
                    Tensor& out, int64_t heads) {
  if (SequenceParallel* group = state.sequence())
    group->attention(be, q, k, v, out, heads);
  else
    be.attention(q, k, v, out, heads, {});
}

}  // namespace ditrun::runtime
