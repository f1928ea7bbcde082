// Codebooks of the non-linear 4-bit types (values as defined by the GGUF format).
#pragma once

#include <cstdint>

namespace ditrun::codecs {

// IQ4_NL / IQ4_XS: a non-uniform 16-level codebook, denser near zero.
inline constexpr int8_t kIq4NlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// MXFP4: the E2M1 values {0, .5, 1, 1.5, 2, 3, 4, 6} (bit 3 = sign), doubled to integers.
inline constexpr int8_t kMxfp4DoubledValues[16] = {0, 1, 2, 3, 4, 6, 8, 12,
                                                   0, -1, -2, -3, -4, -6, -8, -12};

}  // namespace ditrun::codecs
