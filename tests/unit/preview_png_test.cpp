// Latent previews and the PNG writer. The PNG's chunks are taken apart here (signature,
// every CRC by a bitwise CRC-32, IHDR fields, tEXt chunks) and the pixels read back through
// libpng's reader.
// Preview colours are checked on latents whose RGB was computed by hand from models.md §6.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "media/png.h"
#include "models/pipeline/latent_preview.h"
#include "runtime/core/error.h"
#include "test_paths.h"


namespace ditrun {
namespace {

using ::testing::HasSubstr;

uint32_t bitwise_crc32(const uint8_t* p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

struct Chunk {
  std::string type;
  std::vector<uint8_t> data;
};

// Splits a PNG into chunks, checking the signature and every CRC.
std::vector<Chunk> read_chunks(const std::vector<uint8_t>& png) {
  const uint8_t signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  EXPECT_GE(png.size(), 8u);
  EXPECT_TRUE(std::equal(signature, signature + 8, png.begin()));
  std::vector<Chunk> chunks;
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint32_t len = be32(&png[at]);
    EXPECT_LE(at + 12 + len, png.size());
    Chunk c{std::string(png.begin() + at + 4, png.begin() + at + 8),
            std::vector<uint8_t>(png.begin() + at + 8, png.begin() + at + 8 + len)};
    EXPECT_EQ(be32(&png[at + 8 + len]), bitwise_crc32(&png[at + 4], len + 4)) << "CRC of " << c.type;
    chunks.push_back(std::move(c));
    at += 12 + len;
  }
  EXPECT_EQ(at, png.size()) << "trailing bytes";
  return chunks;
}

std::vector<uint8_t> pattern(int width, int height) {
  std::vector<uint8_t> rgb(size_t(width) * height * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t(i * 37 + i / 7);
  return rgb;
}

// The chunk sequence of a PNG the writer made: IHDR (8-bit truecolour, no interlace), tEXt
// chunks, IDAT, IEND, every CRC checked by the bitwise CRC above.
void expect_structure(const std::vector<uint8_t>& png, int width, int height, size_t text_chunks) {
  const std::vector<Chunk> chunks = read_chunks(png);
  ASSERT_GE(chunks.size(), 3 + text_chunks);
  EXPECT_EQ(chunks.front().type, "IHDR");
  EXPECT_EQ(chunks.back().type, "IEND");
  const auto& ihdr = chunks[0].data;
  ASSERT_EQ(ihdr.size(), 13u);
  EXPECT_EQ(be32(&ihdr[0]), uint32_t(width));
  EXPECT_EQ(be32(&ihdr[4]), uint32_t(height));
  EXPECT_EQ(std::vector<uint8_t>(ihdr.begin() + 8, ihdr.end()), (std::vector<uint8_t>{8, 2, 0, 0, 0}));
  size_t texts = 0;
  for (const auto& c : chunks) texts += c.type == "tEXt";
  EXPECT_EQ(texts, text_chunks);
}

TEST(Png, RoundTripsThroughLibpngWithTextChunks) {
  const auto rgb = pattern(5, 3);
  const std::vector<media::PngText> text{{"parameters", "{\"seed\": 7, \"steps\": 20}"}, {"Software", "ditrun"}};
  const auto png = media::encode_png_rgb(rgb, 5, 3, text);
  expect_structure(png, 5, 3, 2);
  const media::RgbImage back = media::decode_png(png, "memory");
  EXPECT_EQ(back.width, 5);
  EXPECT_EQ(back.height, 3);
  EXPECT_EQ(back.rgb, rgb);
  EXPECT_EQ(back.text, text);
  // IEND is the same 12 bytes in every PNG; its CRC is the well-known AE 42 60 82.
  const std::vector<uint8_t> iend{0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  EXPECT_TRUE(std::equal(iend.begin(), iend.end(), png.end() - 12));
}

TEST(Png, CompressesSmoothImages) {
  // A 256x256 gradient: 196 KiB of pixels, a few KiB compressed.
  std::vector<uint8_t> rgb(256 * 256 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t((i / 3) % 256 / 2 + (i % 3) * 40);
  const auto png = media::encode_png_rgb(rgb, 256, 256);
  expect_structure(png, 256, 256, 0);
  EXPECT_LT(png.size(), rgb.size() / 10);
  EXPECT_EQ(media::decode_png(png, "memory").rgb, rgb);
}

TEST(Png, ReadsCorruptFilesAsErrors) {
  const auto png = media::encode_png_rgb(pattern(40, 30), 40, 30);
  EXPECT_THROW(media::decode_png(std::vector<uint8_t>(png.begin(), png.begin() + png.size() / 2), "half.png"), Error);
  EXPECT_THROW(media::decode_png(std::vector<uint8_t>{1, 2, 3}, "junk.png"), Error);
  std::vector<uint8_t> flipped = png;
  flipped[png.size() / 2] ^= 0xFF;
  EXPECT_THROW(media::decode_png(flipped, "flipped.png"), Error);
}

TEST(Png, RefusesInconsistentSizes) {
  const auto rgb = pattern(4, 4);
  EXPECT_THROW(media::encode_png_rgb(rgb, 4, 3), Error);
  EXPECT_THROW(media::encode_png_rgb(rgb, 0, 16), Error);
  EXPECT_THROW(media::encode_png_rgb({}, 0, 0), Error);
}

TEST(Png, WritesTheFileAtomically) {
  const std::string dir = test::temp_dir("png");
  const std::string path = dir + "/preview.png";
  const auto rgb = pattern(7, 9);
  media::write_png_rgb(path, rgb, 7, 9);
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes, media::encode_png_rgb(rgb, 7, 9));
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1) << "no temporary file left behind";
  // A failed encode leaves no file at all.
  EXPECT_THROW(media::write_png_rgb(dir + "/bad.png", rgb, 7, 8), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad.png"));
}

// --- latent previews ---

TEST(LatentPreview, FormatsHaveTheirChannelsAndFactors) {
  for (const char* name : {"flux", "wan21", "wan22", "sd3"}) {
    const models::LatentFormat* f = models::find_latent_format(name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_EQ(f->name, name);
    EXPECT_EQ(f->rgb_factors.size(), size_t(f->channels) * 3) << name;
  }
  EXPECT_EQ(models::find_latent_format("sdxl"), nullptr);
  EXPECT_EQ(models::wan22_latent_format().channels, 48);
  EXPECT_EQ(models::flux_latent_format().channels, 16);
  // Spot checks against models.md §6: first and last factor rows, biases.
  EXPECT_FLOAT_EQ(models::flux_latent_format().rgb_factors[0], -0.0346f);
  EXPECT_FLOAT_EQ(models::wan21_latent_format().rgb_factors[47], 0.1861f);
  EXPECT_FLOAT_EQ(models::wan22_latent_format().rgb_factors[143], 0.0055f);
  EXPECT_FLOAT_EQ(models::sd3_latent_format().rgb_bias[2], 0.1925f);

  arch::ModelConfig wan;
  wan.family = arch::Family::Wan;
  wan.params = arch::WanParams{};
  EXPECT_EQ(models::latent_format_for(wan).name, "wan21");
  std::get<arch::WanParams>(wan.params).out_dim = 48;
  EXPECT_EQ(models::latent_format_for(wan).name, "wan22");
  arch::ModelConfig qwen;
  qwen.family = arch::Family::QwenImage;
  qwen.params = arch::QwenImageParams{};
  EXPECT_EQ(models::latent_format_for(qwen).name, "wan21");
  arch::ModelConfig flux;
  EXPECT_EQ(models::latent_format_for(flux).name, "flux");
}

TEST(LatentPreview, FluxColoursComputedByHand) {
  // [16, 2, 2]; pixel (y, x) = channel value at index y·2 + x.
  HostTensor x0({16, 2, 2});
  auto at = [&](int c, int p) -> float& { return x0.data[size_t(c * 4 + p)]; };
  // Pixel 0: zero latent → rgb = bias = (−0.0329, −0.0718, −0.0851);
  //   ((b + 1)/2)·255 = 123.305, 118.3455, 116.6497 → 123, 118, 116 (truncated, not rounded).
  // Pixel 1: channel 4 = 10 → rgb = 10·(0.0859, 0.0721, 0.0329) + bias = (0.8261, 0.6492, 0.2439)
  //   → 232.83, 210.27, 158.60 → 232, 210, 158.
  at(4, 1) = 10;
  // Pixel 2: channel 12 = 100 → rgb ≈ (8.14, 7.58, 7.40): clamped to 255.
  at(12, 2) = 100;
  // Pixel 3: channel 13 = 100 → rgb ≈ (−12.67, −5.29, −11.12): clamped to 0.
  at(13, 3) = 100;
  int w = 0, h = 0;
  const auto rgb = models::preview_rgb(x0, models::flux_latent_format(), w, h);
  EXPECT_EQ(w, 2);
  EXPECT_EQ(h, 2);
  EXPECT_EQ(rgb, (std::vector<uint8_t>{123, 118, 116, 232, 210, 158, 255, 255, 255, 0, 0, 0}));
}

TEST(LatentPreview, VideoShowsTheFirstFrame) {
  // [16, F=2, H=1, W=3]: frame 0 is zero except channel 0 of pixel 2; frame 1 is loud.
  HostTensor x0({16, 2, 1, 3});
  for (int c = 0; c < 16; ++c)
    for (int p = 0; p < 3; ++p) x0.data[size_t(c * 6 + 3 + p)] = 50;
  x0.data[2] = 2;  // channel 0, frame 0, pixel 2
  int w = 0, h = 0;
  const auto rgb = models::preview_rgb(x0, models::wan21_latent_format(), w, h);
  EXPECT_EQ(w, 3);
  EXPECT_EQ(h, 1);
  // Bias (−0.1835, −0.0868, −0.3360) → 104.1, 116.43, 84.66 → 104, 116, 84.
  // Pixel 2 adds 2·(−0.1299, −0.1692, 0.2932): (−0.4433, −0.4252, 0.2504) → 71.0, 73.29, 159.43.
  // 71.0 is (1 − 0.4433)/2·255 = 70.979 → 70.
  EXPECT_EQ(rgb, (std::vector<uint8_t>{104, 116, 84, 104, 116, 84, 70, 73, 159}));
}

TEST(LatentPreview, NonFiniteValuesAreBlackOrWhite) {
  HostTensor x0({16, 1, 2});
  x0.data[0] = NAN;
  x0.data[1] = INFINITY;  // channel 0 of pixel 1: −inf·0.0346 in red, +inf in blue
  int w = 0, h = 0;
  const auto rgb = models::preview_rgb(x0, models::flux_latent_format(), w, h);
  EXPECT_EQ(std::vector<uint8_t>(rgb.begin(), rgb.begin() + 3), (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(rgb[3], 0);
  EXPECT_EQ(rgb[5], 255);
}

TEST(LatentPreview, RefusesTheWrongLatent) {
  int w = 0, h = 0;
  try {
    models::preview_rgb(HostTensor({16, 4, 4}), models::wan22_latent_format(), w, h);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("16 channels"));
    EXPECT_THAT(e.what(), HasSubstr("wan22"));
    EXPECT_THAT(e.what(), HasSubstr("48"));
  }
  EXPECT_THROW(models::preview_rgb(HostTensor({16, 16}), models::flux_latent_format(), w, h), Error);
  EXPECT_THROW(models::preview_rgb(HostTensor({1, 16, 1, 2, 2}), models::flux_latent_format(), w, h), Error);
}

}  // namespace
}  // namespace ditrun
