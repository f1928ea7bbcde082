// Launch geometry of the CUDA kernels, checked without a GPU: legal block sizes, every row
// and batch item covered, grid limits respected.
#include "kernels/cuda_plan/launch_geometry.h"

#include <gtest/gtest.h>

namespace ditrun::kernels::cuda_plan {
namespace {

TEST(LaunchGeometry, PerRowBlockCoversARowInWarps) {
  const Launch wide = per_row(2, 4608, 3072, 1, 512);
  EXPECT_EQ(wide.block, 512);
  EXPECT_EQ(wide.grid_x, 4608);
  EXPECT_EQ(wide.grid_y, 2);
  EXPECT_EQ(per_row(1, 7, 40, 1).block, 64);        // two warps cover 40 columns
  EXPECT_EQ(per_row(1, 7, 40, 8).block, 32);        // 5 vectors of 8: one warp
  EXPECT_EQ(per_row(1, 1, 0, 1).block, 32);         // never an empty block
  EXPECT_EQ(per_row(1, 1, 100000, 1, 1024).block, 1024);
  EXPECT_EQ(per_row(1, 1, 100000, 1, 1000).block, 992);  // capped to whole warps
  for (int64_t cols : {1, 31, 32, 33, 500, 3072, 5120, 18432}) {
    const Launch l = per_row(3, 5, cols, 1);
    EXPECT_EQ(l.block % kWarp, 0);
    EXPECT_GE(l.block, kWarp);
    EXPECT_LE(l.block, 1024);
  }
}

TEST(LaunchGeometry, BatchBeyondGridYIsSplit) {
  const Launch l = per_row(100000, 3, 64, 1);
  EXPECT_EQ(l.grid_y, kMaxGridYZ);
  // Launchers loop over batch chunks of grid_y items: the chunks cover every item once.
  int64_t covered = 0;
  for (int64_t b0 = 0; b0 < 100000; b0 += l.grid_y) covered += std::min(l.grid_y, 100000 - b0);
  EXPECT_EQ(covered, 100000);
}

TEST(LaunchGeometry, GridStrideCapsBlocksAndCoversEverything) {
  EXPECT_EQ(grid_stride(10).grid_x, 1);
  EXPECT_EQ(grid_stride(256 * 10).grid_x, 10);
  EXPECT_EQ(grid_stride(256 * 10 + 1).grid_x, 11);
  EXPECT_EQ(grid_stride(int64_t(1) << 40, 256, 65536).grid_x, 65536);
  EXPECT_EQ(grid_stride(0).grid_x, 1);
  EXPECT_EQ(blocks_for(257, 256), 2);
}

}  // namespace
}  // namespace ditrun::kernels::cuda_plan
