// Between a VAE's pixels (f32 in [-1, 1], PyTorch layout) and 8-bit RGB, as the official
// Flux and Wan scripts and ComfyUI convert them: clamp to [-1, 1], scale by 127.5 around the
// middle, truncate (their `.byte()` / `astype(uint8)`); and back: v / 127.5 − 1.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/core/tensor.h"

namespace ditrun::media {

// Frame `t` of item `b` of images [B, 3, H, W] (t = 0) or videos [B, 3, F, H, W] as RGB bytes.
std::vector<uint8_t> rgb8_frame(const HostTensor& pixels, int64_t b, int64_t t);
// Interleaved RGB bytes (height rows) as a [1, 3, H, W] tensor in [-1, 1].
HostTensor pixels_from_rgb8(const std::vector<uint8_t>& rgb, int width, int height);

}  // namespace ditrun::media
