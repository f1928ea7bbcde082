// Flow-matching sigma schedules: shift parsing, the shift formulas at points computed by
// hand, the shape of every schedule, and equality with the schedules the reference runs in
// ../shared/testdata used (BFL get_schedule for Flux, Wan's shifted grid).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "models/formats/mapped_file.h"
#include "models/formats/safetensors.h"
#include "runtime/core/error.h"
#include "runtime/sampling/schedule.h"
#include "test_paths.h"

namespace ditrun::runtime {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string parse_error(std::string_view text) {
  try {
    Shift::parse(text);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "'" << text << "' parsed";
  return "";
}

TEST(Shift, ParsesTheThreeForms) {
  EXPECT_EQ(Shift::parse("none"), Shift::none());
  EXPECT_EQ(Shift::parse("flux-dynamic"), Shift::flux_dynamic());
  EXPECT_EQ(Shift::parse("5"), Shift::constant(5));
  EXPECT_EQ(Shift::parse("5.0"), Shift::constant(5));
  EXPECT_EQ(Shift::parse("3.16"), Shift::constant(3.16));
  EXPECT_EQ(Shift::parse("0.5").value, 0.5);
  EXPECT_EQ(Shift::parse("1e1").value, 10);
}

TEST(Shift, RefusesAnythingElseInOneLine) {
  for (const char* bad : {"", "abc", "None", "flux", "0", "0.0", "-1", "5x", "5 ", " 5", "inf", "nan", "1e999", "+-3"}) {
    const std::string e = parse_error(bad);
    EXPECT_THAT(e, AllOf(HasSubstr("shift '" + std::string(bad) + "'"), HasSubstr("none"), HasSubstr("flux-dynamic"),
                         HasSubstr("positive number")))
        << bad;
    EXPECT_EQ(e.find('\n'), std::string::npos);
  }
  EXPECT_THROW(Shift::constant(0), Error);
  EXPECT_THROW(Shift::constant(-2), Error);
  EXPECT_THROW(Shift::constant(std::nan("")), Error);
}

TEST(Shift, TextRoundTrips) {
  for (const char* text : {"none", "flux-dynamic", "5", "3.16", "0.1", "12"}) EXPECT_EQ(Shift::parse(text).str(), text);
  EXPECT_EQ(Shift::parse("5.0").str(), "5");
  const Shift odd = Shift::constant(1.0 / 3.0);
  EXPECT_EQ(Shift::parse(odd.str()), odd);  // shortest round-trip text loses nothing
}

TEST(Schedule, FluxMuAtItsAnchors) {
  EXPECT_DOUBLE_EQ(flux_dynamic_mu(256), 0.5);
  EXPECT_DOUBLE_EQ(flux_dynamic_mu(4096), 1.15);
  EXPECT_DOUBLE_EQ(flux_dynamic_mu(2176), 0.825);  // halfway
  EXPECT_NEAR(flux_dynamic_mu(24), 0.5 - 0.65 / 3840 * 232, 1e-15);
}

TEST(Schedule, ShiftFormulasAtHandComputedPoints) {
  EXPECT_DOUBLE_EQ(shift_time(0.5, Shift::none(), 0), 0.5);
  // s·t/(1 + (s−1)·t): s = 3, t = 0.5 → 1.5 / 2; s = 5, t = 0.25 → 1.25 / 2.
  EXPECT_DOUBLE_EQ(shift_time(0.5, Shift::constant(3), 0), 0.75);
  EXPECT_DOUBLE_EQ(shift_time(0.25, Shift::constant(5), 0), 0.625);
  // Flux dynamic at t = 0.5 is the logistic of μ: e^μ/(e^μ + 1). At 4096 tokens μ = 1.15.
  EXPECT_NEAR(shift_time(0.5, Shift::flux_dynamic(), 4096), 1 / (1 + std::exp(-1.15)), 1e-15);
  // The same curve as the constant shift s = e^μ (models.md §0.4).
  for (double t : {0.1, 0.3, 0.77, 0.95})
    EXPECT_NEAR(shift_time(t, Shift::flux_dynamic(), 1000), shift_time(t, Shift::constant(std::exp(flux_dynamic_mu(1000))), 0),
                1e-14);
}

TEST(Schedule, EveryScheduleRunsFromOneToZeroAndFalls) {
  for (const Shift& shift : {Shift::none(), Shift::constant(0.5), Shift::constant(3), Shift::constant(12),
                             Shift::flux_dynamic()}) {
    for (int steps : {1, 2, 3, 28, 50}) {
      const std::vector<double> s = flow_sigmas(steps, shift, 4096);
      ASSERT_EQ(s.size(), size_t(steps) + 1);
      EXPECT_EQ(s.front(), 1.0) << shift.str() << " " << steps;
      EXPECT_EQ(s.back(), 0.0) << shift.str() << " " << steps;
      for (size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i], s[i - 1]) << shift.str() << " step " << i;
    }
  }
  // No shift is the plain grid; a shift > 1 spends more of the steps at high noise.
  const auto plain = flow_sigmas(4, Shift::none(), 0);
  EXPECT_EQ(plain, (std::vector<double>{1, 0.75, 0.5, 0.25, 0}));
  const auto shifted = flow_sigmas(4, Shift::constant(3), 0);
  for (size_t i = 1; i < 4; ++i) EXPECT_GT(shifted[i], plain[i]);
}

TEST(Schedule, RefusesBadArguments) {
  EXPECT_THROW(flow_sigmas(0, Shift::none(), 0), Error);
  EXPECT_THROW(flow_sigmas(-3, Shift::none(), 0), Error);
  try {
    flow_sigmas(4, Shift::flux_dynamic(), 0);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("flux-dynamic"));
  }
  EXPECT_NO_THROW(flow_sigmas(4, Shift::constant(3), 0));  // only Flux's shift needs the token count
}

// The reference runs' schedules: `sample.sigmas` (F32, steps + 1 values) and the metadata
// that says how they were made.
struct ReferenceCase {
  const char* file;
  int64_t image_tokens;  // Flux: in.img's L_img for one batch item
};

std::vector<float> read_f32(const formats::MappedFile& file, const formats::SafetensorsIndex& index,
                            const std::string& name, Shape* shape = nullptr) {
  for (const auto& t : index.tensors) {
    if (t.name != name) continue;
    EXPECT_EQ(t.dtype, DType::F32);
    if (shape) *shape = t.shape;
    std::vector<float> v(t.nbytes / 4);
    std::memcpy(v.data(), file.bytes().data() + t.offset, t.nbytes);
    return v;
  }
  ADD_FAILURE() << "no tensor " << name;
  return {};
}

TEST(Schedule, MatchesTheReferenceSamplingRuns) {
  for (const ReferenceCase& c : {ReferenceCase{"flux-tiny-dev", 24}, ReferenceCase{"flux-tiny-schnell", 15},
                                 ReferenceCase{"wan21-tiny-t2v", 0}}) {
    SCOPED_TRACE(c.file);
    const std::string path = test::testdata(std::string("reference/") + c.file + ".io.safetensors");
    const formats::MappedFile file(path);
    const auto index = formats::parse_safetensors(file.bytes(), path);
    const std::vector<float> expected = read_f32(file, index, "sample.sigmas");
    const int steps = std::stoi(index.metadata.at("steps"));
    const Shift shift = Shift::parse(index.metadata.at("shift"));
    if (c.image_tokens > 0) {  // the token count really is the image's: check it against in.img
      Shape img;
      read_f32(file, index, "in.img", &img);
      ASSERT_EQ(img.size(), 3u);
      EXPECT_EQ(img[1], c.image_tokens);
    }
    const std::vector<double> got = flow_sigmas(steps, shift, c.image_tokens);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-6) << "sigma " << i;
  }
}

}  // namespace
}  // namespace ditrun::runtime
