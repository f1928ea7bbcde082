// libpng reports errors through longjmp: every call into it runs inside one function with a
// setjmp, and the message it gives goes into a buffer that becomes a ditrun::Error after the
// jump, so no C++ object is ever skipped by a longjmp.
#include "media/png.h"

#include <png.h>

#include <csetjmp>
#include <cstring>
#include <fstream>
#include <iterator>

#include "runtime/core/atomic_file.h"
#include "runtime/core/error.h"

namespace ditrun::media {
namespace {

constexpr int kCompressionLevel = 4;  // ComfyUI's default: most of level 9's size at a fraction of the time

struct ErrorState {
  char message[256] = {};
};

void on_error(png_structp png, png_const_charp msg) {
  auto* state = static_cast<ErrorState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof state->message, "%s", msg);
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}

void append(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
void no_flush(png_structp) {}

// The libpng calls of one encode; false (with state.message) when libpng failed.
bool encode(std::vector<uint8_t>& out, const uint8_t* rgb, int width, int height, png_text* text, int n_text,
            ErrorState& state) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, info ? &info : nullptr);
    return false;
  }
  png_set_write_fn(png, &out, append, no_flush);
  png_set_compression_level(png, kCompressionLevel);
  png_set_IHDR(png, info, png_uint_32(width), png_uint_32(height), 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (n_text > 0) png_set_text(png, info, text, n_text);
  png_write_info(png, info);
  for (int y = 0; y < height; ++y) png_write_row(png, rgb + size_t(y) * size_t(width) * 3);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return true;
}

struct Reader {
  const uint8_t* data;
  size_t size, at = 0;
};
void read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<Reader*>(png_get_io_ptr(png));
  if (r->size - r->at < n) png_error(png, "the file ends early");
  std::memcpy(out, r->data + r->at, n);
  r->at += n;
}

bool decode(Reader& reader, RgbImage& image, ErrorState& state) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    return false;
  }
  png_set_read_fn(png, &reader, read_bytes);
  png_read_info(png, info);
  // Everything to 8-bit RGB: palette and grey expanded, 16-bit stripped, alpha dropped.
  png_set_expand(png);
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  image.width = int(png_get_image_width(png, info));
  image.height = int(png_get_image_height(png, info));
  if (png_get_rowbytes(png, info) != size_t(image.width) * 3) png_error(png, "cannot convert to 8-bit RGB");
  image.rgb.resize(size_t(image.width) * size_t(image.height) * 3);
  std::vector<png_bytep> rows(size_t(image.height));
  for (int y = 0; y < image.height; ++y) rows[size_t(y)] = image.rgb.data() + size_t(y) * size_t(image.width) * 3;
  png_read_image(png, rows.data());
  png_read_end(png, info);
  png_textp text = nullptr;
  const int n = png_get_text(png, info, &text, nullptr);
  for (int i = 0; i < n; ++i) image.text.emplace_back(text[i].key, std::string(text[i].text, text[i].text_length));
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

}  // namespace

std::vector<uint8_t> encode_png_rgb(std::span<const uint8_t> rgb, int width, int height, std::span<const PngText> text) {
  if (width < 1 || height < 1 || rgb.size() != size_t(width) * size_t(height) * 3)
    fail("PNG: {} bytes are not a {}x{} RGB image", rgb.size(), width, height);
  std::vector<png_text> entries(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto& [key, value] = text[i];
    if (key.empty() || key.size() > 79) fail("PNG: text keyword '{}' is not 1 to 79 characters", key);
    entries[i] = {};
    entries[i].compression = PNG_TEXT_COMPRESSION_NONE;
    entries[i].key = const_cast<char*>(key.c_str());
    entries[i].text = const_cast<char*>(value.c_str());
    entries[i].text_length = value.size();
  }
  std::vector<uint8_t> out;
  ErrorState state;
  if (!encode(out, rgb.data(), width, height, entries.data(), int(entries.size()), state))
    fail("PNG: libpng failed to encode a {}x{} image: {}", width, height, state.message);
  return out;
}

void write_png_rgb(const std::string& path, std::span<const uint8_t> rgb, int width, int height,
                   std::span<const PngText> text) {
  const std::vector<uint8_t> bytes = encode_png_rgb(rgb, width, height, text);
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

RgbImage decode_png(std::span<const uint8_t> bytes, const std::string& what) {
  if (bytes.size() < 8 || png_sig_cmp(bytes.data(), 0, 8) != 0) fail("{}: not a PNG file", what);
  Reader reader{bytes.data(), bytes.size()};
  RgbImage image;
  ErrorState state;
  if (!decode(reader, image, state)) fail("{}: corrupt PNG: {}", what, state.message);
  return image;
}

RgbImage read_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the image", path);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return decode_png(bytes, path);
}

}  // namespace ditrun::media
