// PNG files through libpng: 8-bit RGB, zlib-compressed, with tEXt chunks holding the job's
// parameters (as ComfyUI stores its prompt and workflow), and the reading side that
// image-to-image and image-to-video inputs go through (any PNG libpng reads, as 8-bit RGB).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ditrun::media {

using PngText = std::pair<std::string, std::string>;  // keyword (1-79 Latin-1 chars), text

// The complete PNG for `rgb` (height rows of width·3 bytes, top row first). Fails (ditrun::Error)
// unless width, height ≥ 1 and rgb holds exactly width·height·3 bytes, or on a bad keyword.
std::vector<uint8_t> encode_png_rgb(std::span<const uint8_t> rgb, int width, int height,
                                    std::span<const PngText> text = {});

// Writes encode_png_rgb's bytes to `path` atomically (temporary file, then rename), so a
// viewer polling the file never sees half an image.
void write_png_rgb(const std::string& path, std::span<const uint8_t> rgb, int width, int height,
                   std::span<const PngText> text = {});

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;    // height rows of width·3 bytes
  std::vector<PngText> text;  // tEXt / zTXt / iTXt chunks, in file order
};
// Any PNG (grey, palette, alpha, 16-bit, interlaced) as 8-bit RGB: alpha is dropped, as a
// diffusion model's image input has none. Fails naming `what` (a path) on a corrupt file.
RgbImage decode_png(std::span<const uint8_t> bytes, const std::string& what);
RgbImage read_png(const std::string& path);

}  // namespace ditrun::media
