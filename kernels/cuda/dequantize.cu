// Weight decoding kernels. Block types: one thread per group of 8 consecutive elements, which
// the shared decoder (BlockDecoder<T>::decode8) turns into 8 floats; the thread applies the
// scales and writes 16 bytes of bf16 or 32 of f32. Plain types: one thread per element.
// Compiled with --fmad=false (kernels/CMakeLists.txt): the CPU codecs round like ggml's C,
// without fused multiply-adds, and so must these, to be bit-exact with them.
#include <cuda_bf16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dequantize.h"
#include "kernels/cuda/kernel_checks.h"
#include "kernels/cuda_plan/launch_geometry.h"
#include "runtime/core/codecs/block_decoders.h"
#include "runtime/core/host_device.h"

namespace ditrun::kernels::cuda {
namespace {

using codecs::BlockDecoder;
using codecs::Codebooks;

// The IQ lattice codebooks in device memory, from the same data files as the host arrays.
__device__ const uint64_t kIq2xxsGrid[256] = {
#include "runtime/core/codecs/iq_grids/iq2xxs_grid.inc"
};
__device__ const uint64_t kIq2xsGrid[512] = {
#include "runtime/core/codecs/iq_grids/iq2xs_grid.inc"
};
__device__ const uint64_t kIq2sGrid[1024] = {
#include "runtime/core/codecs/iq_grids/iq2s_grid.inc"
};
__device__ const uint32_t kIq3xxsGrid[256] = {
#include "runtime/core/codecs/iq_grids/iq3xxs_grid.inc"
};
__device__ const uint32_t kIq3sGrid[512] = {
#include "runtime/core/codecs/iq_grids/iq3s_grid.inc"
};
__device__ const uint64_t kIq1sGrid[2048] = {
#include "runtime/core/codecs/iq_grids/iq1s_grid.inc"
};
__device__ const uint8_t kKsignsIq2xs[128] = {
#include "runtime/core/codecs/iq_grids/ksigns_iq2xs.inc"
};

__device__ __forceinline__ Codebooks device_codebooks() {
  Codebooks books{};
  books.iq2xxs_grid = kIq2xxsGrid;
  books.iq2xs_grid = kIq2xsGrid;
  books.iq2s_grid = kIq2sGrid;
  books.iq3xxs_grid = kIq3xxsGrid;
  books.iq3s_grid = kIq3sGrid;
  books.iq1s_grid = kIq1sGrid;
  books.ksigns_iq2xs = kKsignsIq2xs;
  return books;
}

// How scales multiply decoded values (Weight::dequantize_rows): after decoding, in f32.
struct Scales {
  const float* values = nullptr;
  uint8_t layout = 0;  // ScaleLayout
  int64_t per_row = 0; // PerBlock: scale blocks per row
  int64_t block = 1;   // PerBlock: columns per scale
  __device__ __forceinline__ float at(int64_t row, int64_t col) const {
    switch (ScaleLayout(layout)) {
      case ScaleLayout::None: return 1.0f;
      case ScaleLayout::PerTensor: return values[0];
      case ScaleLayout::PerRow: return values[row];
      case ScaleLayout::PerBlock: return values[row * per_row + col / block];
    }
    return 1.0f;
  }
};

__device__ __forceinline__ void store8(float* out, const float* v) {
  reinterpret_cast<float4*>(out)[0] = make_float4(v[0], v[1], v[2], v[3]);
  reinterpret_cast<float4*>(out)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void store8(__nv_bfloat16* out, const float* v) {
  uint4 packed;
  uint32_t* w = reinterpret_cast<uint32_t*>(&packed);
  for (int i = 0; i < 4; ++i)
    w[i] = uint32_t(hd::float_to_bf16(v[2 * i])) | (uint32_t(hd::float_to_bf16(v[2 * i + 1])) << 16);
  *reinterpret_cast<uint4*>(out) = packed;
}
__device__ __forceinline__ void store1(float* out, float v) { *out = v; }
__device__ __forceinline__ void store1(__nv_bfloat16* out, float v) {
  *reinterpret_cast<uint16_t*>(out) = hd::float_to_bf16(v);
}

template <class Decoder, class Out>
__global__ void decode_blocks_kernel(const uint8_t* rows, int64_t row_bytes, int64_t groups_per_row, int64_t groups,
                                     int64_t row0, Scales scales, bool scaled, Out* out) {
  constexpr int64_t kGroupsPerBlock = Decoder::kElems / 8;
  const Codebooks books = device_codebooks();
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < groups; g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = g / groups_per_row, gi = g % groups_per_row;
    const uint8_t* block = rows + r * row_bytes + (gi / kGroupsPerBlock) * Decoder::kBytes;
    float v[8];
    Decoder::decode8(block, int(gi % kGroupsPerBlock), v, books);
    if (scaled)
      for (int i = 0; i < 8; ++i) v[i] *= scales.at(row0 + r, gi * 8 + i);
    store8(out + g * 8, v);
  }
}

// The plain storage types, element by element.
template <DType T>
__device__ __forceinline__ float decode_plain(const uint8_t* p, int64_t i) {
  if constexpr (T == DType::F32) return reinterpret_cast<const float*>(p)[i];
  else if constexpr (T == DType::F16) return hd::half_to_float(reinterpret_cast<const uint16_t*>(p)[i]);
  else if constexpr (T == DType::BF16) return hd::bf16_to_float(reinterpret_cast<const uint16_t*>(p)[i]);
  else if constexpr (T == DType::F8_E4M3) return hd::e4m3_to_float(p[i]);
  else return hd::e5m2_to_float(p[i]);
}

template <DType T, class Out>
__global__ void decode_plain_kernel(const uint8_t* bytes, int64_t cols, int64_t n, int64_t row0, Scales scales,
                                    bool scaled, Out* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float v = decode_plain<T>(bytes, i);
    if (scaled) v *= scales.at(row0 + i / cols, i % cols);
    store1(out + i, v);
  }
}

template <DType T>
constexpr bool kPlain = T == DType::F32 || T == DType::F16 || T == DType::BF16 || T == DType::F8_E4M3 ||
                        T == DType::F8_E5M2;

template <class Out>
void launch(const WeightRef& w, int64_t row_begin, int64_t row_end, Out* out, cudaStream_t stream) {
  const Weight& src = *w.source;
  const int64_t rows = row_end - row_begin, cols = src.cols();
  const int64_t row_bytes = dtype_bytes(src.storage, cols, src.name);
  const uint8_t* first = w.bytes + row_begin * row_bytes;
  Scales scales;
  scales.values = w.scales;
  scales.layout = uint8_t(src.scale_layout);
  if (src.scale_layout == ScaleLayout::PerBlock) {
    scales.block = src.scale_block;
    scales.per_row = cols / src.scale_block;
  }
  const bool scaled = src.scale_layout != ScaleLayout::None;

  auto plain = [&]<DType T>() {
    const int64_t n = rows * cols;
    const auto g = cuda_plan::grid_stride(n, 256);
    decode_plain_kernel<T, Out><<<unsigned(g.grid_x), g.block, 0, stream>>>(first, cols, n, row_begin, scales, scaled, out);
  };
  switch (src.storage) {
    case DType::F32: plain.template operator()<DType::F32>(); break;
    case DType::F16: plain.template operator()<DType::F16>(); break;
    case DType::BF16: plain.template operator()<DType::BF16>(); break;
    case DType::F8_E4M3: plain.template operator()<DType::F8_E4M3>(); break;
    case DType::F8_E5M2: plain.template operator()<DType::F8_E5M2>(); break;
    default: {
      const bool known = codecs::visit_block_decoder(src.storage, [&](auto decoder) {
        using D = decltype(decoder);
        const int64_t groups_per_row = cols / 8, groups = rows * groups_per_row;
        const auto g = cuda_plan::grid_stride(groups, 256);
        decode_blocks_kernel<D, Out><<<unsigned(g.grid_x), g.block, 0, stream>>>(first, row_bytes, groups_per_row, groups,
                                                                             row_begin, scales, scaled, out);
      });
      if (!known) detail::fail_no_device_decoder(src);
    }
  }
  check_launch("dequantize");
}

}  // namespace

bool can_dequantize(DType storage) {
  switch (storage) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::F8_E4M3:
    case DType::F8_E5M2: return true;
    default: return codecs::visit_block_decoder(storage, [](auto) {});
  }
}

void dequantize(const WeightRef& w, int64_t row_begin, int64_t row_end, void* out, DType out_dtype,
                cudaStream_t stream) {
  detail::check_dequantize(w, row_begin, row_end, out, out_dtype);
  if (row_begin == row_end || w.source->cols() == 0) return;
  if (out_dtype == DType::F32) launch(w, row_begin, row_end, static_cast<float*>(out), stream);
  else launch(w, row_begin, row_end, static_cast<__nv_bfloat16*>(out), stream);
}

}  // namespace ditrun::kernels::cuda
