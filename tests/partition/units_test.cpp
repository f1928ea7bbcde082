#include "runtime/core/units.h"

#include <gtest/gtest.h>

#include "runtime/core/error.h"

namespace ditrun::partition {
namespace {

TEST(Units, ParsesBinarySizesInAnyCase) {
  EXPECT_EQ(try_parse_bytes("12gb"), 12 * GiB);
  EXPECT_EQ(try_parse_bytes("12GB"), 12 * GiB);
  EXPECT_EQ(try_parse_bytes("24GiB"), 24 * GiB);
  EXPECT_EQ(try_parse_bytes("512mb"), 512 * MiB);
  EXPECT_EQ(try_parse_bytes("1.5g"), 3 * GiB / 2);
  EXPECT_EQ(try_parse_bytes(" 64 kib "), 64 * KiB);
  EXPECT_EQ(try_parse_bytes("2t"), 2 * TiB);
  EXPECT_EQ(try_parse_bytes("800000000"), 800000000u);
  EXPECT_EQ(try_parse_bytes("100b"), 100u);
  EXPECT_EQ(try_parse_bytes("0"), 0u);
  EXPECT_EQ(try_parse_bytes(".5gb"), GiB / 2);
}

TEST(Units, RejectsWhatIsNotASize) {
  for (const char* bad : {"", "gb", "x", "-1gb", "1.5", "1.5b", "12xb", "1..2gb", "12 g b", "1e3", "12gbs",
                          "99999999999tb", "18446744073709551616"})
    EXPECT_FALSE(try_parse_bytes(bad).has_value()) << bad;
}

TEST(Units, ParseBytesErrorNamesTheThing) {
  try {
    parse_bytes("12xb", "--reserve-vram");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "--reserve-vram '12xb' is not a size (use 512mb, 12gb, 1.5gib or a whole number of bytes; units are "
                 "binary)");
  }
}

TEST(Units, FormatsWithTheLargestUnit) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(800), "800 B");
  EXPECT_EQ(format_bytes(512 * MiB), "512 MiB");
  EXPECT_EQ(format_bytes(24 * GiB), "24 GiB");
  EXPECT_EQ(format_bytes(static_cast<uint64_t>(31.2 * GiB)), "31.2 GiB");
  EXPECT_EQ(format_bytes(3 * TiB), "3 TiB");
}

TEST(Units, ExactFormatRoundTrips) {
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, 1000 * uint64_t{1}, 81559 * MiB, 24 * GiB, 2 * TiB, 3 * KiB + 1})
    EXPECT_EQ(try_parse_bytes(format_bytes_exact(n)), n) << format_bytes_exact(n);
  EXPECT_EQ(format_bytes_exact(81559 * MiB), "81559mib");
  EXPECT_EQ(format_bytes_exact(24 * GiB), "24gib");
}

TEST(Units, FormatsSeconds) {
  EXPECT_EQ(format_seconds(0.0005), "500 us");
  EXPECT_EQ(format_seconds(0.0123), "12.3 ms");
  EXPECT_EQ(format_seconds(1.25), "1.25 s");
}

}  // namespace
}  // namespace ditrun::partition
