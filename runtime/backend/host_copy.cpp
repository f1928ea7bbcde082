#include "runtime/backend/host_copy.h"

#include "runtime/core/error.h"

namespace ditrun::runtime {

Tensor to_backend(Backend& backend, std::span<const float> values, const Shape& shape) {
  if (int64_t(values.size()) != shape_numel(shape))
    fail("{} values do not fill a tensor of shape {}", values.size(), shape_string(shape));
  Tensor t = backend.empty(shape);
  backend.upload(values, t, backend.compute_stream());
  return t;
}

HostTensor to_host(Backend& backend, const Tensor& t) {
  HostTensor h(t.shape());
  backend.download(t, h.data, backend.compute_stream());
  backend.synchronize(backend.compute_stream());
  return h;
}

}  // namespace ditrun::runtime
