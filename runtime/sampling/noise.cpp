#include "runtime/sampling/noise.h"

#include <cmath>

#include "runtime/core/error.h"
#include "runtime/core/parallel.h"

namespace ditrun::runtime {
namespace {

constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;

// 53 random bits plus one, scaled: uniform on {2^-53, 2·2^-53, ..., 1}.
double unit_open_closed(uint32_t lo, uint32_t hi) {
  const uint64_t bits = (uint64_t(hi) << 32) | lo;
  return double((bits >> 11) + 1) * 0x1p-53;
}

}  // namespace

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(kMul0) * c[0];
    const uint64_t p1 = uint64_t(kMul1) * c[2];
    c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1], uint32_t(p0)};
    k = {k[0] + kWeyl0, k[1] + kWeyl1};
  }
  return c;
}

void seeded_noise_range(uint64_t seed, uint64_t first, std::span<float> out) {
  const std::array<uint32_t, 2> key{uint32_t(seed), uint32_t(seed >> 32)};
  uint64_t i = first;
  const uint64_t end = first + out.size();
  while (i < end) {
    const uint64_t pair = i / 2;
    const auto r = philox4x32_10({uint32_t(pair), uint32_t(pair >> 32), 0, 0}, key);
    const double rho = std::sqrt(-2.0 * std::log(unit_open_closed(r[0], r[1])));
    const double theta = 6.283185307179586 * unit_open_closed(r[2], r[3]);
    // A range may start or end in the middle of a pair: emit only the halves inside it.
    if (i % 2 == 0) {
      out[i - first] = float(rho * std::cos(theta));
      ++i;
    }
    if (i < end) {
      out[i - first] = float(rho * std::sin(theta));
      ++i;
    }
  }
}

HostTensor seeded_noise(uint64_t seed, const Shape& shape) {
  const int64_t n = shape_numel(shape);
  if (n < 0) fail("noise: invalid latent shape {}", shape_string(shape));
  HostTensor x(shape);
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
    seeded_noise_range(seed, uint64_t(b), std::span<float>(x.data).subspan(size_t(b), size_t(e - b)));
  });
  return x;
}

}  // namespace ditrun::runtime
