#include "gpu_test_support.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <memory>

#include "kernels/cuda/cuda_check.h"
#include "runtime/core/error.h"
#include "runtime/core/float_codecs.h"

namespace ditrun::test {

using kernels::cuda::check_cuda;

std::optional<std::string> gpu_unavailable_reason() {
  static const std::optional<std::string> reason = []() -> std::optional<std::string> {
    int count = 0;
    if (const cudaError_t err = cudaGetDeviceCount(&count); err != cudaSuccess) {
      cudaGetLastError();
      return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    }
    if (count == 0) return std::string("no CUDA device visible");
    if (const cudaError_t err = cudaSetDevice(0); err != cudaSuccess)
      return std::string("cudaSetDevice(0): ") + cudaGetErrorString(err);
    return std::nullopt;
  }();
  return reason;
}

Tensor device_tensor(const Shape& shape, DType dtype, const std::vector<float>& values) {
  if (dtype != DType::F32 && dtype != DType::BF16) fail("device_tensor: {} is not an activation dtype", dtype_name(dtype));
  const int64_t n = shape_numel(shape);
  if (int64_t(values.size()) != n) fail("device_tensor: {} values for shape {}", values.size(), shape_string(shape));
  const size_t elem = dtype == DType::F32 ? 4 : 2;
  void* p = nullptr;
  check_cuda(cudaMalloc(&p, std::max<size_t>(size_t(n) * elem, 256)), "cudaMalloc (test tensor)");
  std::shared_ptr<void> memory(p, [](void* q) { cudaFree(q); });
  if (dtype == DType::F32) {
    check_cuda(cudaMemcpy(p, values.data(), size_t(n) * 4, cudaMemcpyHostToDevice), "upload (test tensor)");
  } else {
    std::vector<uint16_t> bits(values.size());
    for (size_t i = 0; i < values.size(); ++i) bits[i] = f32_to_bf16(values[i]);
    check_cuda(cudaMemcpy(p, bits.data(), size_t(n) * 2, cudaMemcpyHostToDevice), "upload (test tensor)");
  }
  return Tensor(std::move(memory), p, dtype, shape, Device{DeviceKind::Cuda, 0});
}

Tensor host_tensor(const Shape& shape, std::vector<float>& values) {
  if (int64_t(values.size()) != shape_numel(shape))
    fail("host_tensor: {} values for shape {}", values.size(), shape_string(shape));
  return Tensor(nullptr, values.data(), DType::F32, shape, Device{DeviceKind::Cpu, 0});
}

std::vector<float> download(const Tensor& t) {
  check_cuda(cudaDeviceSynchronize(), "synchronize before download (a kernel failed)");
  const size_t elem = t.dtype() == DType::F32 ? 4 : 2;
  const int64_t batch = t.batch(), rows = t.rows(), cols = t.cols();
  std::vector<float> out(size_t(batch * rows * cols));
  std::vector<uint8_t> row(size_t(cols) * elem);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r) {
      const auto* src = static_cast<const uint8_t*>(t.data()) + (b * t.batch_stride() + r * t.row_stride()) * int64_t(elem);
      check_cuda(cudaMemcpy(row.data(), src, row.size(), cudaMemcpyDeviceToHost), "download (test tensor)");
      float* dst = out.data() + (b * rows + r) * cols;
      for (int64_t c = 0; c < cols; ++c) {
        if (elem == 4) {
          std::memcpy(dst + c, row.data() + 4 * c, 4);
        } else {
          uint16_t bits;
          std::memcpy(&bits, row.data() + 2 * c, 2);
          dst[c] = bf16_to_f32(bits);
        }
      }
    }
  return out;
}

std::vector<float> random_values(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

MaxDiff max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  MaxDiff d;
  if (a.size() != b.size()) return {INFINITY, 0};
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::fabs(double(a[i]) - double(b[i]));
    if (!(e <= d.value)) {  // NaN counts as the worst
      d.value = std::isnan(e) ? INFINITY : e;
      d.index = i;
    }
  }
  return d;
}

}  // namespace ditrun::test
