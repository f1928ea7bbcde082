// The IQ4_NL codebook for the encoder (values as defined by the GGUF format; the decoders
// carry the same values in block_decoders.h, as a table device code can read).
#pragma once

#include <cstdint>

namespace ditrun::codecs {

// IQ4_NL / IQ4_XS: a non-uniform 16-level codebook, denser near zero.
inline constexpr int8_t kIq4NlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

}  // namespace ditrun::codecs
