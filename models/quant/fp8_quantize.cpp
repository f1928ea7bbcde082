#include "models/quant/fp8_quantize.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"
#include "runtime/core/float_codecs.h"

namespace ditrun::quant {
namespace {

void check_input(std::span<const float> w, int64_t rows, int64_t cols, const char* what) {
  if (rows < 0 || cols < 0) fail("{}: negative shape [{}, {}]", what, rows, cols);
  if (rows != 0 && cols > INT64_MAX / rows) fail("{}: shape [{}, {}] overflows", what, rows, cols);
  if (int64_t(w.size()) != rows * cols)
    fail("{}: {} values do not form a [{}, {}] matrix", what, w.size(), rows, cols);
  // A NaN or infinity would poison its group's scale and with it every value in the group.
  for (size_t i = 0; i < w.size(); ++i)
    if (!std::isfinite(w[i])) fail("{}: element {} is {}, weights must be finite", what, i, w[i]);
}

float group_amax(const float* x, int64_t n) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax;
}

// Rounds a scale to the dtype it will be stored in (the identity for f32).
float as_stored(float scale, DType dtype) {
  switch (dtype) {
    case DType::F32: return scale;
    case DType::BF16: return bf16_to_f32(f32_to_bf16(scale));
    case DType::F16: return f16_to_f32(f32_to_f16(scale));
    default: fail("fp8 scales cannot be stored as {}", dtype_name(dtype));
  }
}

// Codes for x / scale. The encoders saturate at the largest finite value, which is the
// clamp(-max, max) every reference quantizer applies before its fp8 cast.
void encode_group(const float* x, int64_t n, float scale, DType fp8, uint8_t* out) {
  const float inv = 1.0f / scale;
  for (int64_t i = 0; i < n; ++i) out[i] = fp8 == DType::F8_E4M3 ? f32_to_f8e4m3(x[i] * inv) : f32_to_f8e5m2(x[i] * inv);
}

}  // namespace

Fp8Quantized quantize_fp8_per_tensor(std::span<const float> w, int64_t rows, int64_t cols, DType fp8) {
  check_input(w, rows, cols, "quantize_fp8_per_tensor");
  if (fp8 != DType::F8_E4M3 && fp8 != DType::F8_E5M2)
    fail("quantize_fp8_per_tensor: {} is not an fp8 weight type", dtype_name(fp8));
  const float fp8_max = fp8 == DType::F8_E4M3 ? 448.0f : 57344.0f;
  const float amax = group_amax(w.data(), int64_t(w.size()));
  Fp8Quantized out;
  out.storage = fp8;
  out.layout = ScaleLayout::PerTensor;
  out.block = 0;
  out.scales = {amax > 0.0f ? amax / fp8_max : 1.0f};
  out.bytes.resize(w.size());
  encode_group(w.data(), int64_t(w.size()), out.scales[0], fp8, out.bytes.data());
  return out;
}

Fp8Quantized quantize_fp8_blockwise(std::span<const float> w, int64_t rows, int64_t cols, int64_t block,
                                    DType scale_dtype) {
  check_input(w, rows, cols, "quantize_fp8_blockwise");
  if (block <= 0) fail("quantize_fp8_blockwise: block size {} must be positive", block);
  Fp8Quantized out;
  out.storage = DType::F8_E4M3;
  const bool blocked = cols % block == 0;
  out.layout = blocked ? ScaleLayout::PerBlock : ScaleLayout::PerRow;
  out.block = blocked ? block : cols;
  const int64_t group = out.block;
  const int64_t groups = group == 0 ? 0 : rows * cols / group;
  out.scales.resize(size_t(groups));
  out.bytes.resize(w.size());
  for (int64_t g = 0; g < groups; ++g) {
    const float* x = w.data() + g * group;
    // The clamp keeps zero groups finite; it is applied before rounding to the stored
    // dtype, as musubi clamps in f32 and then casts.
    const float scale = as_stored(std::max(group_amax(x, group) / 448.0f, 1e-8f), scale_dtype);
    out.scales[size_t(g)] = scale;
    encode_group(x, group, scale, DType::F8_E4M3, out.bytes.data() + g * group);
  }
  return out;
}

}  // namespace ditrun::quant
