#include "models/common/model_io.h"

#include <algorithm>

#include "runtime/core/error.h"

namespace ditrun::models {

bool shape_fits(const Shape& shape, const Shape& want) {
  if (shape.size() != want.size()) return false;
  for (size_t i = 0; i < want.size(); ++i)
    if (want[i] >= 0 && want[i] != shape[i]) return false;
  return true;
}

const HostTensor& require_input(const runtime::HostTensors& inputs, std::string_view name, const Shape& want,
                                std::string_view layout) {
  auto it = inputs.find(name);
  if (it == inputs.end()) fail("model input '{}' ({}) is missing", name, layout);
  const HostTensor& t = it->second;
  if (!shape_fits(t.shape, want)) fail("model input '{}': shape {} should be {}", name, shape_string(t.shape), layout);
  return t;
}

const HostTensor* optional_input(const runtime::HostTensors& inputs, std::string_view name) {
  auto it = inputs.find(name);
  return it == inputs.end() ? nullptr : &it->second;
}

Tensor mlp_embed(runtime::Backend& backend, const runtime::WeightLookup& weights, const std::string& first,
                 const std::string& second, std::span<const float> x, int64_t batch, int64_t width, int64_t hidden) {
  Tensor h = backend.empty({batch, 1, hidden});
  backend.linear(to_backend(backend, x, {batch, 1, width}), weights.at(first + ".weight"), &weights.at(first + ".bias"), h);
  backend.silu(h, h);
  Tensor out = backend.empty({batch, 1, hidden});
  backend.linear(h, weights.at(second + ".weight"), &weights.at(second + ".bias"), out);
  return out;
}

HostTensor concat_channels(const HostTensor& a, const HostTensor& b) {
  if (a.shape.size() < 2 || a.shape.size() != b.shape.size() || a.shape[0] != b.shape[0] ||
      !std::equal(a.shape.begin() + 2, a.shape.end(), b.shape.begin() + 2))
    fail("concat_channels: {} and {} differ beyond their channels", shape_string(a.shape), shape_string(b.shape));
  Shape joined = a.shape;
  joined[1] += b.shape[1];
  HostTensor out(joined);
  const size_t per_a = a.data.size() / size_t(a.shape[0]), per_b = b.data.size() / size_t(b.shape[0]);
  auto dst = out.data.begin();
  for (size_t i = 0; i < size_t(a.shape[0]); ++i) {
    dst = std::copy_n(a.data.begin() + long(i * per_a), per_a, dst);
    dst = std::copy_n(b.data.begin() + long(i * per_b), per_b, dst);
  }
  return out;
}

}  // namespace ditrun::models
