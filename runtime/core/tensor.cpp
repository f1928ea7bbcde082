#include "runtime/core/tensor.h"

#include <cmath>

#include <fmt/format.h>

#include "runtime/core/error.h"

namespace ditrun {

std::string Device::str() const { return kind == DeviceKind::Cpu ? "cpu" : fmt::format("cuda:{}", index); }

Tensor::Tensor(std::shared_ptr<void> allocation, void* data, DType dtype, Shape shape, Device device)
    : allocation_(std::move(allocation)), data_(data), dtype_(dtype), shape_(std::move(shape)), device_(device) {
  for (int64_t d : shape_)
    if (d < 0) fail("tensor shape {} has a negative dim", shape_string(shape_));
  row_stride_ = cols();
  batch_stride_ = rows() * cols();
}

int64_t Tensor::dim(int i) const {
  const int n = ndim();
  if (i < -n || i >= n) fail("tensor {}: no dim {}", describe(), i);
  return shape_[size_t(i < 0 ? i + n : i)];
}

int64_t Tensor::rows() const {
  if (shape_.size() <= 1) return 1;
  int64_t r = 1;
  for (size_t i = shape_.size() >= 3 ? 1 : 0; i + 1 < shape_.size(); ++i) r *= shape_[i];
  return r;
}

std::string Tensor::describe() const {
  return fmt::format("{} {} {}", shape_string(shape_), dtype_name(dtype_), device_.str());
}

Tensor Tensor::slice_cols(int64_t begin, int64_t count) const {
  if (begin < 0 || count < 0 || begin + count > cols())
    fail("tensor {}: columns [{}, {}) out of range", describe(), begin, begin + count);
  Tensor t = *this;
  t.data_ = static_cast<char*>(data_) + uint64_t(begin) * dtype_info(dtype_).block_bytes;
  t.shape_.back() = count;
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t count) const {
  if (ndim() != 2 && ndim() != 3) fail("tensor {}: row slices need a 2-D or 3-D tensor", describe());
  const int64_t n = shape_[shape_.size() - 2];
  if (begin < 0 || count < 0 || begin + count > n)
    fail("tensor {}: rows [{}, {}) out of range", describe(), begin, begin + count);
  Tensor t = *this;
  t.data_ = static_cast<char*>(data_) + uint64_t(begin * row_stride_) * dtype_info(dtype_).block_bytes;
  t.shape_[shape_.size() - 2] = count;
  return t;
}

Tensor Tensor::slice_batch(int64_t begin, int64_t count) const {
  if (ndim() < 3) fail("tensor {}: batch slices need a tensor with 3 or more dims", describe());
  if (begin < 0 || count < 0 || begin + count > shape_[0])
    fail("tensor {}: batch items [{}, {}) out of range", describe(), begin, begin + count);
  Tensor t = *this;
  t.data_ = static_cast<char*>(data_) + uint64_t(begin * batch_stride_) * dtype_info(dtype_).block_bytes;
  t.shape_[0] = count;
  return t;
}

Tensor Tensor::view(Shape shape) const {
  if (!contiguous()) fail("tensor {}: only a contiguous tensor can be viewed as {}", describe(), shape_string(shape));
  if (shape_numel(shape) != numel()) fail("tensor {}: cannot view as {}", describe(), shape_string(shape));
  return Tensor(allocation_, data_, dtype_, std::move(shape), device_);
}

HostTensor::HostTensor(Shape s, std::vector<float> d) : shape(std::move(s)), data(std::move(d)) {
  if (int64_t(data.size()) != shape_numel(shape))
    fail("host tensor {} given {} values", shape_string(shape), data.size());
}

bool HostTensor::all_finite() const {
  for (float v : data)
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace ditrun
