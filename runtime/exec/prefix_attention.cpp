#include "runtime/exec/prefix_attention.h"

#include <algorithm>
#include <vector>

#include "runtime/core/error.h"

namespace ditrun::runtime {

void prefix_masked_attention(Backend& be, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out, int64_t heads,
                             int64_t prefix, int64_t valid_tokens, std::span<const int64_t> prefix_keys, Tensor* lse) {
  const int64_t B = k.dim(0), Lk = k.dim(1), tokens = Lk - prefix;
  if (prefix < 0 || tokens < 0 || valid_tokens < 0 || valid_tokens > tokens)
    fail("attention: {} prefix rows and {} valid token rows do not fit {} keys", prefix, valid_tokens, Lk);
  if (!prefix_keys.empty() && int64_t(prefix_keys.size()) != B)
    fail("attention: a text mask for {} items, the batch has {}", prefix_keys.size(), B);
  const bool masked = std::any_of(prefix_keys.begin(), prefix_keys.end(), [&](int64_t n) { return n < prefix; });
  const auto attend = [&](const Tensor& keys, const Tensor& values, std::span<const int64_t> kv_lens) {
    if (lse) be.attention_lse(q, keys, values, out, *lse, heads, kv_lens);
    else be.attention(q, keys, values, out, heads, kv_lens);
  };
  if (!masked) {
    if (valid_tokens == tokens) return attend(k, v, {});
    const std::vector<int64_t> kv_lens(size_t(B), prefix + valid_tokens);
    return attend(k, v, kv_lens);
  }
  // [valid token rows | prefix rows]: item b's keys are its first valid_tokens + prefix_keys[b].
  const auto relaid = [&](const Tensor& t) {
    Tensor r = be.empty({B, valid_tokens + prefix, t.dim(2)});
    if (valid_tokens > 0) {
      Tensor dst = r.slice_rows(0, valid_tokens);
      be.copy(t.slice_rows(prefix, valid_tokens), dst);
    }
    if (prefix > 0) {
      Tensor dst = r.slice_rows(valid_tokens, prefix);
      be.copy(t.slice_rows(0, prefix), dst);
    }
    return r;
  };
  std::vector<int64_t> kv_lens(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) kv_lens[size_t(b)] = valid_tokens + std::clamp<int64_t>(prefix_keys[size_t(b)], 0, prefix);
  attend(relaid(k), relaid(v), kv_lens);
}

}  // namespace ditrun::runtime
