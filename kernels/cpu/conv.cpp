// Convolution as gathered patches times the stored weight. Channels are last, so one tap of
// one output position is C_in contiguous input values; they land in the patch row at stride
// taps (W's column order is c_in-major), a scatter that stays within one patch row (L1).
#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_common.h"
#include "runtime/core/error.h"

namespace ditrun::kernels::cpu {
namespace {

// Patch rows per GEMM: enough for an efficient GEMM, few enough that the scratch stays ~32 MiB.
int64_t chunk_positions(int64_t k, int64_t positions) {
  const int64_t by_memory = (int64_t(32) << 20) / (k * int64_t(sizeof(float)));
  return std::clamp<int64_t>(by_memory, 64, std::max<int64_t>(positions, 1));
}

}  // namespace

void conv3d(const CpuContext& ctx, const Tensor& x, const Volume& in, const Weight& w, const Weight* bias,
            const ConvSpec& spec, Tensor& y) {
  constexpr std::string_view op = "conv3d";
  detail::check_host_f32(op, "x", x);
  detail::check_host_f32(op, "y", y);
  const Volume out = spec.output(in, std::string(op));
  const int64_t c_in = x.cols(), c_out = y.cols(), taps = spec.taps(), k = c_in * taps;
  if (x.rows() != in.positions() || y.rows() != out.positions() || y.batch() != x.batch())
    fail("{} '{}': x {} over volume {} and y {} (expected {} positions for {})", op, w.name, x.describe(), in.str(),
         y.describe(), out.positions(), spec.str());
  if (w.rows() != c_out || w.cols() != k)
    fail("{} '{}': weight {} is not [{}, {}x{}] for x {} -> y {}", op, w.name, shape_string(w.shape), c_out, c_in,
         taps, x.describe(), y.describe());
  if (spec.pointwise()) return linear(ctx, x, w, bias, y);

  const int64_t positions = out.positions(), chunk = chunk_positions(k, positions);
  std::vector<float> scratch(size_t(chunk * k));
  for (int64_t b = 0; b < x.batch(); ++b) {
    for (int64_t p0 = 0; p0 < positions; p0 += chunk) {
      const int64_t n = std::min(chunk, positions - p0);
      detail::parallel_chunks(ctx, n, 16, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int64_t p = p0 + i, ow = p % out.w, oh = (p / out.w) % out.h, ot = p / (out.w * out.h);
          float* patch = scratch.data() + i * k;
          int64_t tap = 0;
          for (int64_t a = 0; a < spec.kernel[0]; ++a) {
            const int64_t t = ot * spec.stride[0] - spec.pad_before[0] + a;
            for (int64_t bb = 0; bb < spec.kernel[1]; ++bb) {
              const int64_t h = oh * spec.stride[1] - spec.pad_before[1] + bb;
              for (int64_t d = 0; d < spec.kernel[2]; ++d, ++tap) {
                const int64_t ww = ow * spec.stride[2] - spec.pad_before[2] + d;
                float* dst = patch + tap;
                if (t < 0 || t >= in.t || h < 0 || h >= in.h || ww < 0 || ww >= in.w) {
                  for (int64_t c = 0; c < c_in; ++c) dst[c * taps] = 0.0f;
                  continue;
                }
                const float* src = x.row<const float>(b, (t * in.h + h) * in.w + ww);
                for (int64_t c = 0; c < c_in; ++c) dst[c * taps] = src[c];
              }
            }
          }
        }
      });
      Tensor patches(nullptr, scratch.data(), DType::F32, Shape{1, n, k}, x.device());
      Tensor y_rows = y.slice_batch(b, 1).slice_rows(p0, n);
      linear(ctx, patches, w, bias, y_rows);
    }
  }
}

}  // namespace ditrun::kernels::cpu
