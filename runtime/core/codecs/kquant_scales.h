// Packing of K-quant sub-block scales for the encoders (the decoders unpack them in
// block_decoders.h: detail::k4_scale_min, detail::q3_k_scale).
#pragma once

#include <cstdint>

namespace ditrun::codecs {

// Q4_K / Q5_K: eight 6-bit (scale, min) pairs packed into 12 bytes. Bytes 0-3 hold
// scale[0..3] plus the top 2 bits of scale[4..7]; bytes 4-7 hold min[0..3] plus the top 2
// bits of min[4..7]; bytes 8-11 hold the low nibbles of scale[4..7] and min[4..7].
inline void k4_pack_scale_min(const uint8_t sc[8], const uint8_t m[8], uint8_t q[12]) {
  for (int j = 0; j < 4; ++j) {
    q[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    q[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    q[j + 8] = uint8_t((sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4));
  }
}

// Q3_K: sixteen 6-bit signed scales (stored +32) packed into 12 bytes: low nibbles of
// scales 0-7 in bytes 0-7 (low) and 8-15 in bytes 0-7 (high); the top 2 bits of scale k in
// byte 8 + k%4 at bit position 2*(k/4).
inline void pack_q3_k_scales(const int8_t in[16], uint8_t packed[12]) {
  for (int i = 0; i < 12; ++i) packed[i] = 0;
  for (int k = 0; k < 16; ++k) {
    const int v = in[k] + 32;  // 0..63
    if (k < 8) {
      packed[k] |= uint8_t(v & 0x0F);
    } else {
      packed[k - 8] |= uint8_t((v & 0x0F) << 4);
    }
    packed[8 + k % 4] |= uint8_t(((v >> 4) & 3) << (2 * (k / 4)));
  }
}

}  // namespace ditrun::codecs
