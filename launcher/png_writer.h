// 8-bit RGB PNG output (latent previews, and later decoded images) without an image
// library. The pixels go into stored (uncompressed) deflate blocks: a valid zlib stream
// every PNG reader accepts, at the cost of size, which is small for previews (a 128×128
// latent preview is 49 KiB). Swapping in zlib's deflate later changes only encode_idat.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ditrun::launcher {

// The complete PNG file for `rgb` (height rows of width·3 bytes, top row first): signature,
// IHDR (8-bit truecolour, no interlace), one IDAT (zlib stream of filter-0 rows), IEND.
// Fails unless width, height ≥ 1 and rgb holds exactly width·height·3 bytes.
std::vector<uint8_t> encode_png_rgb(std::span<const uint8_t> rgb, int width, int height);

// Writes encode_png_rgb's bytes to `path` atomically (temporary file, then rename), so a
// viewer polling the file never sees half an image.
void write_png_rgb(const std::string& path, std::span<const uint8_t> rgb, int width, int height);

}  // namespace ditrun::launcher
