// Attention over a joint sequence whose first rows are a text prefix that may be padded
// (Qwen-Image batches prompts of different lengths, zero-padded, with a text mask).
//
// Keys are [P prefix rows | T token rows] per batch item: the first `valid_tokens` token rows
// are keys (the rest are sequence-parallel padding), and of the prefix item b's first
// prefix_keys[b] rows (none given: all P). Padded prefix rows sit between real keys, where a
// key length cannot exclude them, so with a mask k and v are laid out again as [token rows |
// prefix rows] first: attention does not depend on the order of its keys, and the padding is
// then at the end of each item's keys, where kv_lens excludes it. Queries and outputs keep
// their rows. Without a mask this is the backend's attention as it is.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/backend/backend.h"

namespace ditrun::runtime {

// q, out [B, Lq, H·D]; k, v [B, prefix + tokens, H·D]. With `lse` (Backend::attention_lse),
// each query row's log-sum-exp is written too.
void prefix_masked_attention(Backend& backend, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                             int64_t heads, int64_t prefix, int64_t valid_tokens,
                             std::span<const int64_t> prefix_keys, Tensor* lse = nullptr);

}  // namespace ditrun::runtime
