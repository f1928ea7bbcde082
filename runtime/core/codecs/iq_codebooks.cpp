// The host copies of the IQ lattice codebooks, from the data files that
// scripts/extract_iq_grids.py writes (the CUDA kernels build their device copies from the
// same files).
#include "runtime/core/codecs/block_decoders.h"

namespace ditrun::codecs {
namespace {

constexpr uint64_t kIq2xxsGrid[256] = {
#include "runtime/core/codecs/iq_grids/iq2xxs_grid.inc"
};
constexpr uint64_t kIq2xsGrid[512] = {
#include "runtime/core/codecs/iq_grids/iq2xs_grid.inc"
};
constexpr uint64_t kIq2sGrid[1024] = {
#include "runtime/core/codecs/iq_grids/iq2s_grid.inc"
};
constexpr uint32_t kIq3xxsGrid[256] = {
#include "runtime/core/codecs/iq_grids/iq3xxs_grid.inc"
};
constexpr uint32_t kIq3sGrid[512] = {
#include "runtime/core/codecs/iq_grids/iq3s_grid.inc"
};
constexpr uint64_t kIq1sGrid[2048] = {
#include "runtime/core/codecs/iq_grids/iq1s_grid.inc"
};
constexpr uint8_t kKsignsIq2xs[128] = {
#include "runtime/core/codecs/iq_grids/ksigns_iq2xs.inc"
};

// A data file one entry short would leave a zero at the end: check the last entries.
static_assert(kIq2xxsGrid[255] != 0 && kIq2xsGrid[511] != 0 && kIq2sGrid[1023] != 0 && kIq3xxsGrid[255] != 0 &&
              kIq3sGrid[511] != 0 && kIq1sGrid[2047] != 0 && kKsignsIq2xs[127] != 0);

constexpr Codebooks kHostCodebooks = {kIq2xxsGrid, kIq2xsGrid, kIq2sGrid, kIq3xxsGrid,
                                      kIq3sGrid,   kIq1sGrid,  kKsignsIq2xs};

}  // namespace

const Codebooks& host_codebooks() { return kHostCodebooks; }

}  // namespace ditrun::codecs
