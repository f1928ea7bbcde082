// The CPU loop over a buffer of blocks, shared by the CPU codec files: every block decoded
// group by group through BlockDecoder<T>::decode8, the code the CUDA kernels run.
#pragma once

#include <cstdint>

#include "runtime/core/codecs/block_decoders.h"

namespace ditrun::codecs {

// One block, its groups unrolled: with every group's index arithmetic folded and `restrict`
// promising that the stores leave the block alone, the compiler decodes the block's scales
// once for all its groups and vectorizes each group.
template <class D>
[[gnu::always_inline]] inline void decode_block(const uint8_t* __restrict block, float* __restrict out,
                                                const Codebooks& books) {
#pragma GCC unroll 32
  for (int g = 0; g < int(D::kElems / 8); ++g) D::decode8(block, g, out + 8 * g, books);
}

template <DType T>
void decode_blocks(const uint8_t* src, float* dst, int64_t n) {
  using D = BlockDecoder<T>;
  const Codebooks& books = host_codebooks();
  for (int64_t b = 0; b < n / D::kElems; ++b) decode_block<D>(src + b * D::kBytes, dst + b * D::kElems, books);
}

}  // namespace ditrun::codecs
