#include "kernels/cuda_plan/launch_geometry.h"

#include <algorithm>

namespace ditrun::kernels::cuda_plan {

Launch per_row(int64_t batch, int64_t rows, int64_t cols, int vector, int max_threads) {
  Launch l;
  const int64_t vectors = blocks_for(std::max<int64_t>(cols, 1), std::max(vector, 1));
  const int64_t warps = blocks_for(vectors, kWarp);
  l.block = int(std::clamp<int64_t>(warps * kWarp, kWarp, std::max(max_threads / kWarp, 1) * kWarp));
  l.grid_x = std::max<int64_t>(rows, 1);
  l.grid_y = std::max<int64_t>(batch_per_launch(batch), 1);
  return l;
}

Launch grid_stride(int64_t n, int threads, int64_t max_blocks) {
  Launch l;
  l.block = threads;
  l.grid_x = std::clamp<int64_t>(blocks_for(n, threads), 1, std::min(max_blocks, kMaxGridX));
  return l;
}

}  // namespace ditrun::kernels::cuda_plan
