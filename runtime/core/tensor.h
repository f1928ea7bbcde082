// Activation tensors: a view into memory that a Backend allocated (host memory for the CPU
// backend, device memory for CUDA). A Tensor never owns more than a reference to its
// allocation, so views are cheap and keep the allocation alive.
//
// Layout. Every activation in a DiT is a batch of token rows: [B, L, C] (vectors are
// [B, 1, C]). A Tensor is therefore a three-level view, [batch][row][col]:
//   - the last dim (cols) is contiguous;
//   - the dims between the first and the last are flattened into rows with one row stride;
//   - the first dim, when ndim >= 3, is the batch with its own stride.
// That is exactly enough for the views the models need without copies: column slices of a
// fused projection (q | k | v | mlp) and row ranges of a joint sequence (txt | img), while
// every kernel stays a loop over (batch, row) with a pointer and a stride, which maps
// directly onto BLAS leading dimensions and CUDA row-wise launches.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/weight.h"

namespace ditrun {

enum class DeviceKind : uint8_t { Cpu, Cuda };

struct Device {
  DeviceKind kind = DeviceKind::Cpu;
  int index = 0;
  std::string str() const;  // "cpu", "cuda:1"
  bool operator==(const Device&) const = default;
};

class Tensor {
 public:
  Tensor() = default;
  // A contiguous tensor at `data`, kept alive by `allocation`.
  Tensor(std::shared_ptr<void> allocation, void* data, DType dtype, Shape shape, Device device);

  bool defined() const { return data_ != nullptr || numel() == 0; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return int(shape_.size()); }
  int64_t dim(int i) const;  // negative counts from the back
  int64_t numel() const { return shape_numel(shape_); }
  Device device() const { return device_; }
  std::string describe() const;  // "[2, 24, 128] f32 cpu"

  int64_t batch() const { return shape_.size() >= 3 ? shape_[0] : 1; }
  int64_t rows() const;
  int64_t cols() const { return shape_.empty() ? 1 : shape_.back(); }
  int64_t row_stride() const { return row_stride_; }      // elements between rows
  int64_t batch_stride() const { return batch_stride_; }  // elements between batch items
  bool contiguous() const { return row_stride_ == cols() && batch_stride_ == rows() * cols(); }

  void* data() const { return data_; }
  template <class T>
  T* data_as() const { return static_cast<T*>(data_); }
  // Start of row r of batch item b.
  template <class T>
  T* row(int64_t b, int64_t r) const {
    return static_cast<T*>(data_) + b * batch_stride_ + r * row_stride_;
  }

  // Views sharing the allocation.
  Tensor slice_cols(int64_t begin, int64_t count) const;
  Tensor slice_rows(int64_t begin, int64_t count) const;   // dim ndim-2 of a 2-D or 3-D tensor
  Tensor slice_batch(int64_t begin, int64_t count) const;  // dim 0 of a tensor with ndim >= 3
  Tensor view(Shape shape) const;                          // contiguous tensors only, same numel

 private:
  std::shared_ptr<void> allocation_;
  void* data_ = nullptr;
  DType dtype_ = DType::F32;
  Shape shape_;
  Device device_;
  int64_t row_stride_ = 0, batch_stride_ = 0;
};

// A tensor in host memory at a model's boundary (inputs, outputs, latents): always f32,
// contiguous, any rank.
struct HostTensor {
  Shape shape;
  std::vector<float> data;

  HostTensor() = default;
  explicit HostTensor(Shape s) : shape(std::move(s)), data(size_t(shape_numel(shape)), 0.0f) {}
  HostTensor(Shape s, std::vector<float> d);  // checks the sizes agree
  int64_t numel() const { return int64_t(data.size()); }
  bool all_finite() const;  // no NaN, no Inf
};

}  // namespace ditrun
