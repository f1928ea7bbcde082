#include "media/pixels.h"

#include <algorithm>

#include "runtime/core/error.h"

namespace ditrun::media {

std::vector<uint8_t> rgb8_frame(const HostTensor& pixels, int64_t b, int64_t t) {
  const bool video = pixels.shape.size() == 5;
  if ((pixels.shape.size() != 4 && !video) || pixels.shape[1] != 3)
    fail("pixels {}: not images [B, 3, H, W] or videos [B, 3, F, H, W]", shape_string(pixels.shape));
  const int64_t frames = video ? pixels.shape[2] : 1, h = pixels.shape[video ? 3 : 2], w = pixels.shape[video ? 4 : 3];
  if (b < 0 || b >= pixels.shape[0] || t < 0 || t >= frames)
    fail("pixels {}: no item {} frame {}", shape_string(pixels.shape), b, t);
  const int64_t plane = h * w;
  std::vector<uint8_t> rgb(size_t(plane * 3));
  for (int64_t c = 0; c < 3; ++c) {
    const float* src = pixels.data.data() + ((b * 3 + c) * frames + t) * plane;
    for (int64_t p = 0; p < plane; ++p)
      rgb[size_t(p * 3 + c)] = uint8_t(127.5f * (std::clamp(src[p], -1.0f, 1.0f) + 1.0f));
  }
  return rgb;
}

HostTensor pixels_from_rgb8(const std::vector<uint8_t>& rgb, int width, int height) {
  if (width < 1 || height < 1 || rgb.size() != size_t(width) * size_t(height) * 3)
    fail("{} bytes are not a {}x{} RGB image", rgb.size(), width, height);
  const int64_t plane = int64_t(width) * height;
  HostTensor out(Shape{1, 3, height, width});
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t p = 0; p < plane; ++p) out.data[size_t(c * plane + p)] = float(rgb[size_t(p * 3 + c)]) / 127.5f - 1.0f;
  return out;
}

}  // namespace ditrun::media
