#include "runtime/exec/batch_parallel.h"

#include <cstring>

#include "runtime/backend/host_copy.h"
#include "runtime/core/error.h"

namespace ditrun::runtime {

void BatchParallel::split(Backend& be, const StateLayout& layout, ActivationState& state) {
  if (layout.batch_tensors.empty()) fail("CFG parallel: the model names no batched tensors to split");
  batch_ = state.at(layout.batch_tensors.front()).dim(0);
  if (batch_ != degree())
    fail("CFG parallel over {} ranks needs a batch of {} (cond and uncond), the call has {}", degree(), degree(),
         batch_);
  for (const std::string& name : layout.batch_tensors) {
    const Tensor& t = state.at(name);
    if (t.ndim() < 2 || t.dim(0) != batch_)
      fail("CFG parallel: '{}' has shape {}, expected a batch of {}", name, shape_string(t.shape()), batch_);
    Shape item = t.shape();
    item[0] = 1;
    const HostTensor whole = to_host(be, t);
    const size_t per_item = whole.data.size() / size_t(batch_);
    state.set(name, to_backend(be, std::span<const float>(whole.data).subspan(size_t(index()) * per_item, per_item), item));
  }
  // A text mask follows its item; member 0 puts the whole mask back at the gather.
  prefix_keys_ = state.prefix_keys();
  if (!prefix_keys_.empty()) {
    const int64_t rows = state.prefix_mask_rows(), mine = prefix_keys_.at(size_t(index()));
    state.set_prefix_mask(rows, std::span<const int64_t>(&mine, 1));
    prefix_rows_ = rows;
  }
}

bool BatchParallel::gather(Backend& be, const StateLayout& layout, ActivationState& state) {
  for (const std::string& name : layout.batch_tensors) {
    const Tensor& t = state.at(name);
    const HostTensor mine = to_host(be, t);
    transport::Bytes bytes(mine.data.size() * sizeof(float));
    std::memcpy(bytes.data(), mine.data.data(), bytes.size());
    const std::vector<transport::Bytes> parts = group_.gather(std::move(bytes), 0);
    if (index() != 0) continue;
    std::vector<float> whole;
    whole.reserve(mine.data.size() * size_t(batch_));
    for (const transport::Bytes& part : parts) {
      if (part.size() != mine.data.size() * sizeof(float))
        fail("CFG parallel: a rank sent {} bytes of '{}', expected {}", part.size(), name, mine.data.size() * sizeof(float));
      const auto* values = reinterpret_cast<const float*>(part.data());
      whole.insert(whole.end(), values, values + mine.data.size());
    }
    Shape shape = t.shape();
    shape[0] = batch_;
    state.set(name, to_backend(be, whole, shape));
  }
  if (index() != 0) {
    state = ActivationState{};
    return false;
  }
  if (!prefix_keys_.empty()) state.set_prefix_mask(prefix_rows_, prefix_keys_);
  return true;
}

}  // namespace ditrun::runtime
