// What the CPU benchmarks measure against: OpenBLAS sgemm on every core at a shape of the
// workload (the kernels run OpenBLAS single-threaded and split the work themselves; this is
// the limit of that design), best of `repeats` runs; and wall-clock seconds.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "runtime/core/parallel.h"

namespace ditrun::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// GFLOP/s of C[m, n] = A[m, k] · B[n, k]ᵀ.
inline double measured_sgemm_gflops(int64_t m, int64_t n, int64_t k, int repeats = 3) {
  openblas_set_num_threads(int(host_threads()));
  std::vector<float> a(size_t(m * k), 0.5f), b(size_t(n * k), 0.25f), c(size_t(m * n));
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t = Clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, a.data(), int(k), b.data(),
                int(k), 0.0f, c.data(), int(n));
    best = std::min(best, seconds_since(t));
  }
  return 2.0 * double(m) * double(n) * double(k) / best / 1e9;
}

}  // namespace ditrun::bench
