#include "launcher/png_writer.h"

#include <algorithm>
#include <array>

#include "runtime/core/atomic_file.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

// CRC-32 as PNG (and zlib's crc32) define it: reflected polynomial 0xEDB88320, initial and
// final value 0xFFFFFFFF.
const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  return table;
}

uint32_t crc32(std::span<const uint8_t> bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t b : bytes) c = crc_table()[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void put_u32_be(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(uint8_t(v >> shift));
}

// A chunk: length, type, data, CRC over type and data.
void put_chunk(std::vector<uint8_t>& out, const char (&type)[5], std::span<const uint8_t> data) {
  put_u32_be(out, uint32_t(data.size()));
  const size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32_be(out, crc32(std::span<const uint8_t>(out).subspan(type_at)));
}

// The zlib stream of the filtered scanlines: header 78 01 (deflate, 32 KiB window, no
// dictionary, check bits making it a multiple of 31), stored blocks of at most 65535 bytes
// (BFINAL on the last; LEN and its complement NLEN little-endian), then Adler-32 big-endian.
std::vector<uint8_t> encode_idat(std::span<const uint8_t> rgb, int width, int height) {
  const size_t row_bytes = size_t(width) * 3;
  std::vector<uint8_t> raw;
  raw.reserve((row_bytes + 1) * size_t(height));
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);  // filter type 0 (None): the stored stream is not compressed anyway
    const auto row = rgb.subspan(size_t(y) * row_bytes, row_bytes);
    raw.insert(raw.end(), row.begin(), row.end());
  }

  std::vector<uint8_t> z{0x78, 0x01};
  size_t at = 0;
  do {
    const size_t len = std::min<size_t>(raw.size() - at, 65535);
    const bool final = at + len == raw.size();
    z.push_back(final ? 1 : 0);
    z.push_back(uint8_t(len));
    z.push_back(uint8_t(len >> 8));
    z.push_back(uint8_t(~len));
    z.push_back(uint8_t(~len >> 8));
    z.insert(z.end(), raw.begin() + ptrdiff_t(at), raw.begin() + ptrdiff_t(at + len));
    at += len;
  } while (at < raw.size());

  uint32_t a = 1, b = 0;  // Adler-32 over the uncompressed data
  for (uint8_t byte : raw) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  put_u32_be(z, (b << 16) | a);
  return z;
}

}  // namespace

std::vector<uint8_t> encode_png_rgb(std::span<const uint8_t> rgb, int width, int height) {
  if (width < 1 || height < 1) fail("png: image size {}x{} must be at least 1x1", width, height);
  if (rgb.size() != size_t(width) * size_t(height) * 3)
    fail("png: {} bytes of pixels for a {}x{} RGB image (expected {})", rgb.size(), width, height,
         size_t(width) * size_t(height) * 3);

  std::vector<uint8_t> png{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  put_u32_be(ihdr, uint32_t(width));
  put_u32_be(ihdr, uint32_t(height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", encode_idat(rgb, width, height));
  put_chunk(png, "IEND", {});
  return png;
}

void write_png_rgb(const std::string& path, std::span<const uint8_t> rgb, int width, int height) {
  const std::vector<uint8_t> png = encode_png_rgb(rgb, width, height);
  AtomicFile file(path);
  file.write(png);
  file.commit();
}

}  // namespace ditrun::launcher
