// A minimal fork-join loop for host-side bulk work (generating, converting, dequantizing
// weights): splits [0, n) into contiguous chunks over the machine's cores.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace ditrun {

inline unsigned host_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

// Calls fn(begin, end) on disjoint ranges covering [0, n), each at least `grain` long
// (except the last). Exceptions from any chunk are rethrown on the calling thread.
template <class Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
  const int64_t chunks = std::min<int64_t>(max_chunks, host_threads());
  if (chunks == 1) {
    fn(int64_t(0), n);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> workers;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    workers.emplace_back([&, b, e] {
      try {
        fn(b, e);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (auto& w : workers) w.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace ditrun
