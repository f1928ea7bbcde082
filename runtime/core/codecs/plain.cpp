// Plain (one element per block) storage types.
#include <array>
#include <cstring>

#include "runtime/core/codecs/codecs.h"

namespace ditrun::codecs {
namespace {

template <class T>
void widen(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    dst[i] = float(v);
  }
}

}  // namespace

void dequant_f32(const uint8_t* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }
void dequant_f16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = load_f16(src + 2 * i);
}
void dequant_bf16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(src + 2 * i));
}
void dequant_f64(const uint8_t* src, float* dst, int64_t n) { widen<double>(src, dst, n); }
void dequant_f8_e4m3(const uint8_t* src, float* dst, int64_t n) {
  // A table of the 256 values: the CPU's fp8 GEMMs decode every weight per call, and the
  // branchy bit decode per element made T5-XXL in fp8 5.7x slower than in bf16.
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[size_t(v)] = f8e4m3_to_f32(uint8_t(v));
    return t;
  }();
  for (int64_t i = 0; i < n; ++i) dst[i] = table[src[i]];
}
void dequant_f8_e5m2(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f8e5m2_to_f32(src[i]);
}
void dequant_f8_e8m0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = e8m0_to_f32(src[i]);
}
void dequant_i8(const uint8_t* src, float* dst, int64_t n) { widen<int8_t>(src, dst, n); }
void dequant_i16(const uint8_t* src, float* dst, int64_t n) { widen<int16_t>(src, dst, n); }
void dequant_i32(const uint8_t* src, float* dst, int64_t n) { widen<int32_t>(src, dst, n); }
void dequant_i64(const uint8_t* src, float* dst, int64_t n) { widen<int64_t>(src, dst, n); }
void dequant_u8(const uint8_t* src, float* dst, int64_t n) { widen<uint8_t>(src, dst, n); }
void dequant_u16(const uint8_t* src, float* dst, int64_t n) { widen<uint16_t>(src, dst, n); }
void dequant_u32(const uint8_t* src, float* dst, int64_t n) { widen<uint32_t>(src, dst, n); }
void dequant_u64(const uint8_t* src, float* dst, int64_t n) { widen<uint64_t>(src, dst, n); }

void quant_f32(const float* src, uint8_t* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * 4); }
void quant_f16(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) store_u16(dst + 2 * i, f32_to_f16(src[i]));
}
void quant_bf16(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) store_u16(dst + 2 * i, f32_to_bf16(src[i]));
}
void quant_f8_e4m3(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_f8e4m3(src[i]);
}
void quant_f8_e5m2(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_f8e5m2(src[i]);
}

}  // namespace ditrun::codecs
