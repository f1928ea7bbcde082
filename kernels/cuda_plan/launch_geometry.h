// Grid and block shapes of the CUDA kernels, as plain C++: every kernel's launcher asks these
// functions, and the unit tests check them without a GPU (every row or element covered
// exactly once, grid limits respected, block sizes legal).
#pragma once

#include <cstdint>

namespace ditrun::kernels::cuda_plan {

inline constexpr int64_t kMaxGridX = 2147483647;  // 2^31 - 1
inline constexpr int64_t kMaxGridYZ = 65535;
inline constexpr int kWarp = 32;

struct Launch {
  int64_t grid_x = 1, grid_y = 1, grid_z = 1;
  int block = 1;        // threads per block
  int64_t shared_bytes = 0;
  int64_t blocks() const { return grid_x * grid_y * grid_z; }
};

// One block per row of a [batch][rows][cols] view: the row-wise ops (layer/RMS norm,
// modulation, RoPE, the fp8 per-token quantizer). A block's threads stride over the row in
// vectors of `vector` elements; its size is the smallest multiple of the warp that covers a
// row in one pass, capped at `max_threads`. Rows go on grid.x; batch items on grid.y (a
// kernel loops when there are more than 65535, see `batch_per_launch`).
Launch per_row(int64_t batch, int64_t rows, int64_t cols, int vector, int max_threads = 1024);

// A grid-stride loop over `n` items, `threads` per block, at most `max_blocks` blocks (enough
// to fill the GPU several times over; each thread then handles several items).
Launch grid_stride(int64_t n, int threads = 256, int64_t max_blocks = 65536);

// Batch items one launch of a per-row kernel covers (grid.y's limit).
inline int64_t batch_per_launch(int64_t batch) { return batch < kMaxGridYZ ? batch : kMaxGridYZ; }

// Blocks of `threads` covering `n` items once each (ceil(n / threads)).
inline int64_t blocks_for(int64_t n, int64_t threads) { return (n + threads - 1) / threads; }

}  // namespace ditrun::kernels::cuda_plan
