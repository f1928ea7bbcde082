// Seeded noise: the Philox block against Random123's published answers, the documented
// definition recomputed here, independence from shape, chunking and threads, the
// statistics of a standard normal (with bounds tight enough to catch a wrong transform),
// and the noise-file reader's errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "models/formats/safetensors.h"
#include "models/pipeline/noise_file.h"
#include "runtime/core/error.h"
#include "runtime/core/float_codecs.h"
#include "runtime/sampling/noise.h"
#include "test_paths.h"

namespace ditrun::runtime {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(Philox, MatchesRandom123KnownAnswers) {
  // Random123 tests/kat_vectors, "philox4x32 10" lines: counter[4] key[2] -> result[4].
  using Ctr = std::array<uint32_t, 4>;
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (Ctr{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (Ctr{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (Ctr{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

// The definition in noise.h, written out again from the comment.
float documented_element(uint64_t seed, uint64_t i) {
  const uint64_t p = i / 2;
  const auto r = philox4x32_10({uint32_t(p & 0xFFFFFFFF), uint32_t(p >> 32), 0, 0},
                               {uint32_t(seed & 0xFFFFFFFF), uint32_t(seed >> 32)});
  const double u1 = double((((uint64_t(r[1]) << 32) | r[0]) >> 11) + 1) * std::ldexp(1.0, -53);
  const double u2 = double((((uint64_t(r[3]) << 32) | r[2]) >> 11) + 1) * std::ldexp(1.0, -53);
  const double rho = std::sqrt(-2 * std::log(u1)), theta = 2 * M_PI * u2;
  return float(i % 2 == 0 ? rho * std::cos(theta) : rho * std::sin(theta));
}

TEST(SeededNoise, FollowsTheDocumentedDefinition) {
  for (uint64_t seed : {uint64_t(0), uint64_t(42), uint64_t(0x123456789ABCDEF0)}) {
    const HostTensor x = seeded_noise(seed, {3, 7});
    for (uint64_t i = 0; i < 21; ++i) EXPECT_EQ(x.data[i], documented_element(seed, i)) << seed << " " << i;
  }
  // Far along the stream, where the counter's high word is used.
  std::vector<float> far(3);
  const uint64_t first = (uint64_t(1) << 33) + 1;
  seeded_noise_range(9, first, far);
  for (uint64_t k = 0; k < 3; ++k) EXPECT_EQ(far[k], documented_element(9, first + k));
}

TEST(SeededNoise, IsAPureFunctionOfSeedAndIndex) {
  const HostTensor a = seeded_noise(7, {16, 8, 12});
  const HostTensor b = seeded_noise(7, {16, 8, 12});
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.shape, (Shape{16, 8, 12}));
  // Shape does not enter: the same elements in row-major order.
  EXPECT_EQ(seeded_noise(7, {1536}).data, a.data);
  EXPECT_EQ(seeded_noise(7, {16, 2, 4, 12}).data, a.data);
  // A shorter latent is a prefix of a longer one.
  const HostTensor small = seeded_noise(7, {5, 3});
  EXPECT_TRUE(std::equal(small.data.begin(), small.data.end(), a.data.begin()));
}

TEST(SeededNoise, AnyChunkingGivesTheSameValues) {
  const HostTensor whole = seeded_noise(1234, {101});
  // Ranges that start and end on odd indices split Box-Muller pairs.
  const std::vector<size_t> cuts{0, 1, 2, 5, 6, 17, 50, 51, 99, 101};
  std::vector<float> pieces(101);
  for (size_t k = 0; k + 1 < cuts.size(); ++k)
    seeded_noise_range(1234, cuts[k], std::span<float>(pieces).subspan(cuts[k], cuts[k + 1] - cuts[k]));
  EXPECT_EQ(pieces, whole.data);
  // Single elements, each on its own.
  for (size_t i = 0; i < 101; ++i) {
    float one = 0;
    seeded_noise_range(1234, i, std::span<float>(&one, 1));
    EXPECT_EQ(one, whole.data[i]) << i;
  }
}

TEST(SeededNoise, ThreadedGenerationEqualsOneThread) {
  const int64_t n = int64_t(1) << 20;  // large enough that seeded_noise splits it over threads
  const HostTensor threaded = seeded_noise(99, {n});
  std::vector<float> serial(static_cast<size_t>(n));
  seeded_noise_range(99, 0, serial);
  EXPECT_EQ(threaded.data, serial);
}

TEST(SeededNoise, LooksLikeAStandardNormal) {
  const int n = 100000;
  const HostTensor x = seeded_noise(2024, {n});
  double sum = 0, sum2 = 0, sum4 = 0, pair = 0;
  int beyond_196 = 0;
  for (int i = 0; i < n; ++i) {
    const double v = x.data[size_t(i)];
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
    sum2 += v * v;
    sum4 += v * v * v * v;
    beyond_196 += std::abs(v) > 1.959964;
    if (i % 2 == 1) pair += v * x.data[size_t(i) - 1];
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  // Standard errors at n = 1e5: mean 0.0032, variance 0.0045, 4th moment ~0.03, tail
  // fraction 0.0007, pair correlation 0.0045. Bounds are ~5 standard errors: a wrong scale
  // (e.g. uniforms, or sqrt(-ln u) without the 2) or correlated halves fails them.
  EXPECT_NEAR(mean, 0, 0.016);
  EXPECT_NEAR(var, 1, 0.023);
  EXPECT_NEAR(sum4 / n, 3, 0.15);  // kurtosis of a normal
  EXPECT_NEAR(double(beyond_196) / n, 0.05, 0.0035);
  EXPECT_NEAR(pair / (n / 2), 0, 0.023);  // the cos and sin halves of a pair are independent
}

TEST(SeededNoise, DifferentSeedsDiffer) {
  // 1 and 1 + 2^32 differ only in the key's high word.
  const uint64_t seeds[] = {0, 1, uint64_t(1) + (uint64_t(1) << 32), 2};
  std::vector<std::vector<float>> streams;
  for (uint64_t s : seeds) streams.push_back(seeded_noise(s, {1000}).data);
  for (size_t a = 0; a < streams.size(); ++a)
    for (size_t b = a + 1; b < streams.size(); ++b) {
      int equal = 0;
      for (size_t i = 0; i < 1000; ++i) equal += streams[a][i] == streams[b][i];
      EXPECT_EQ(equal, 0) << seeds[a] << " vs " << seeds[b];
    }
}

// --- noise files ---

std::string write_st(const std::string& path, const std::string& name, DType dtype, const Shape& shape,
                     const std::vector<uint8_t>& bytes) {
  formats::SafetensorsWriter w(path, {{name, dtype, shape}});
  w.write_next(bytes);
  w.finish();
  return path;
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::string noise_error(const std::string& path, const Shape& expected = {}) {
  try {
    models::load_noise_file(path, expected);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loaded " << path;
  return "";
}

TEST(NoiseFile, ReadsF32F16AndBF16) {
  const std::string dir = test::temp_dir("noise_file");
  std::vector<float> values(2 * 3 * 4);
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(int(i) - 12) * 0.25f;  // exact in f16 and bf16
  const HostTensor f32 = models::load_noise_file(write_st(dir + "/a.safetensors", "noise", DType::F32, {2, 3, 4}, f32_bytes(values)));
  EXPECT_EQ(f32.shape, (Shape{2, 3, 4}));
  EXPECT_EQ(f32.data, values);

  std::vector<uint8_t> f16, bf16;
  for (float v : values) {
    const uint16_t h = f32_to_f16(v), b = f32_to_bf16(v);
    f16.insert(f16.end(), {uint8_t(h), uint8_t(h >> 8)});
    bf16.insert(bf16.end(), {uint8_t(b), uint8_t(b >> 8)});
  }
  EXPECT_EQ(models::load_noise_file(write_st(dir + "/h.safetensors", "noise", DType::F16, {2, 3, 4}, f16)).data, values);
  const HostTensor video = models::load_noise_file(
      write_st(dir + "/b.safetensors", "noise", DType::BF16, {2, 3, 2, 2}, bf16), Shape{2, 3, 2, 2});
  EXPECT_EQ(video.shape, (Shape{2, 3, 2, 2}));
  EXPECT_EQ(video.data, values);
}

TEST(NoiseFile, ErrorsNameTheFileAndTheProblem) {
  const std::string dir = test::temp_dir("noise_file_errors");
  const std::vector<float> four{1, 2, 3, 4};

  const std::string missing = dir + "/missing.safetensors";
  EXPECT_THAT(noise_error(missing), HasSubstr(missing));

  const std::string garbage = dir + "/garbage.safetensors";
  std::ofstream(garbage) << "not a safetensors file at all";
  EXPECT_THAT(noise_error(garbage), HasSubstr(garbage));

  const std::string wrong_name = write_st(dir + "/name.safetensors", "latent", DType::F32, {1, 2, 2}, f32_bytes(four));
  EXPECT_THAT(noise_error(wrong_name), AllOf(HasSubstr(wrong_name), HasSubstr("'noise'"), HasSubstr("latent")));

  const std::string ints = write_st(dir + "/int.safetensors", "noise", DType::I32, {1, 2, 2}, f32_bytes(four));
  EXPECT_THAT(noise_error(ints), AllOf(HasSubstr(ints), HasSubstr("F32, F16 or BF16")));

  const std::string flat = write_st(dir + "/flat.safetensors", "noise", DType::F32, {4}, f32_bytes(four));
  EXPECT_THAT(noise_error(flat), AllOf(HasSubstr(flat), HasSubstr("[4]"), HasSubstr("[C, H, W]")));
  const std::string batched = write_st(dir + "/b5.safetensors", "noise", DType::F32, {1, 1, 1, 2, 2}, f32_bytes(four));
  EXPECT_THAT(noise_error(batched), AllOf(HasSubstr(batched), HasSubstr("[C, F, H, W]")));

  const std::string ok = write_st(dir + "/ok.safetensors", "noise", DType::F32, {1, 2, 2}, f32_bytes(four));
  EXPECT_THAT(noise_error(ok, Shape{16, 2, 2}), AllOf(HasSubstr(ok), HasSubstr("[1, 2, 2]"), HasSubstr("[16, 2, 2]")));

  const std::string nan = write_st(dir + "/nan.safetensors", "noise", DType::F32, {1, 2, 2}, f32_bytes({1, 2, NAN, 4}));
  EXPECT_THAT(noise_error(nan), AllOf(HasSubstr(nan), HasSubstr("element 2"), HasSubstr("not finite")));

  for (const std::string& e : {noise_error(wrong_name), noise_error(nan)}) EXPECT_EQ(e.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace ditrun::runtime
