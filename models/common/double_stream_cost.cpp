#include "models/common/double_stream_cost.h"

#include "models/common/model_io.h"

namespace ditrun::models {

double DoubleStreamCost::flops(const runtime::TokenCounts& t) const {
  const int64_t h = hidden, L = t.image + t.text;
  const double per_token = linear_flops(1, 3 * h, h) + linear_flops(1, h, h) + 2 * linear_flops(1, mlp, h);
  return double(L) * per_token + 2 * linear_flops(1, 6 * h, h) + attention_flops(t);
}

double DoubleStreamCost::attention_flops(const runtime::TokenCounts& t) const {
  const int64_t L = t.image + t.text;
  return models::attention_flops(L, L, hidden);
}

double DoubleStreamCost::elementwise_elements(const runtime::TokenCounts& t) const {
  const int64_t L = t.image + t.text;
  return double(L) * double(18 * hidden + 2 * head_dim + 2 * mlp);
}

double DoubleStreamCost::self_attention_elements(const runtime::TokenCounts& t) const {
  return 4.0 * double(t.image + t.text) * double(hidden);
}

runtime::StateLayout joint_sequence_layout(const runtime::ActivationState& state, std::vector<std::string> token_tensors,
                                           std::vector<std::string> batch_tensors) {
  runtime::StateLayout layout;
  layout.token_tensors = std::move(token_tensors);
  layout.prefix = state.integer("txt_len");
  layout.tokens = state.integer("img_len");
  layout.tokens_int = "img_len";
  layout.batch_tensors = std::move(batch_tensors);
  return layout;
}

}  // namespace ditrun::models
