// Calibration (launcher/calibration.h, `ditrun bench --calibrate`): the measured rates are
// real (positive, finite, and the bf16 GEMM rate agrees with Backend::linear timed directly),
// the profile survives its JSON, and the command writes a loadable file or nothing at all.
#include "launcher/calibration.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "partition/hardware_profile.h"
#include "runtime/backend/cpu_backend.h"
#include "runtime/core/error.h"
#include "test_paths.h"

namespace ditrun::test {
namespace {

namespace fs = std::filesystem;

// Small enough for a unit test, large enough that one GEMM takes milliseconds.
launcher::CalibrationOptions quick_options() {
  launcher::CalibrationOptions o;
  o.tokens = 256;
  o.hidden = 512;
  o.inner = 512;
  o.attention_tokens = 128;
  o.attention_heads = 2;
  o.head_dim = 64;
  o.stream_bytes = 8 << 20;
  o.seconds = 0.05;
  o.id = "test-calibrated";
  o.baseline = *partition::find_builtin_profile("cpu");
  return o;
}

// Seconds per call of Backend::linear with bf16 weights, timed here without median_timer.
double direct_bf16_linear_seconds(runtime::Backend& backend, const launcher::CalibrationOptions& o) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> x_values(size_t(o.tokens * o.inner)), w_values(size_t(o.hidden * o.inner));
  for (float& v : x_values) v = uniform(rng);
  for (float& v : w_values) v = uniform(rng);
  std::vector<uint8_t> w_bytes(size_t(dtype_bytes(DType::BF16, o.hidden * o.inner, "w")));
  quantize_from_f32(DType::BF16, w_values, w_bytes);
  Weight w;
  w.name = "direct";
  w.shape = {o.hidden, o.inner};
  w.storage = DType::BF16;
  w.bytes = w_bytes;
  const runtime::DeviceWeight loaded = backend.load_weight(w, backend.compute_stream());
  Tensor x = backend.empty({1, o.tokens, o.inner}), y = backend.empty({1, o.tokens, o.hidden});
  backend.upload(x_values, x, backend.compute_stream());
  backend.linear(x, loaded, nullptr, y);  // warm-up
  constexpr int calls = 20;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) backend.linear(x, loaded, nullptr, y);
  backend.synchronize(backend.compute_stream());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / calls;
}

void expect_rate(double value, const std::string& what) {
  EXPECT_TRUE(std::isfinite(value) && value > 0) << what << " = " << value;
}

TEST(Calibration, QuickRunGivesRealRatesThatSurviveJson) {
  auto backend = runtime::make_cpu_backend();
  const launcher::CalibrationOptions o = quick_options();
  const partition::HardwareProfile p = launcher::calibrate(*backend, o);

  EXPECT_EQ(p.id, "test-calibrated");
  EXPECT_EQ(p.kind, partition::HardwareKind::cpu);
  EXPECT_GT(p.memory_bytes, 0u);
  EXPECT_NE(p.source.find("ditrun bench --calibrate on "), std::string::npos) << p.source;
  EXPECT_NE(p.source.find("GEMM 256x512x512"), std::string::npos) << p.source;
  ASSERT_EQ(p.throughput.gemm_flops.size(), 3u);
  for (const char* cls : {"bf16", "fp8", "gguf"}) expect_rate(p.throughput.gemm_flops.at(cls), cls);
  expect_rate(p.throughput.attention_flops, "attention");
  expect_rate(p.throughput.memory_bytes_per_s, "memory");
  expect_rate(p.throughput.elementwise_bytes_per_s, "elementwise");
  expect_rate(p.throughput.host_to_device_bytes_per_s, "host->device");
  expect_rate(p.throughput.device_to_device_bytes_per_s, "device->device");

  // The rate is what Backend::linear achieves at that shape.
  const double direct_flops = 2.0 * double(o.tokens * o.hidden * o.inner) / direct_bf16_linear_seconds(*backend, o);
  const double ratio = p.throughput.gemm_flops.at("bf16") / direct_flops;
  EXPECT_GT(ratio, 1.0 / 3) << "calibrated " << p.throughput.gemm_flops.at("bf16") << " vs direct " << direct_flops;
  EXPECT_LT(ratio, 3.0) << "calibrated " << p.throughput.gemm_flops.at("bf16") << " vs direct " << direct_flops;

  const std::string path = temp_dir("calibration") + "/profile.json";
  std::ofstream(path) << partition::profile_to_json(p).dump(2);
  const partition::HardwareProfile loaded = partition::load_profile(path);
  EXPECT_EQ(loaded.id, p.id);
  EXPECT_EQ(loaded.model, p.model);
  EXPECT_EQ(loaded.memory_bytes, p.memory_bytes);
  for (const auto& [cls, flops] : p.throughput.gemm_flops)
    EXPECT_NEAR(loaded.throughput.gemm_flops.at(cls) / flops, 1.0, 1e-12) << cls;
  EXPECT_NEAR(loaded.throughput.memory_bytes_per_s / p.throughput.memory_bytes_per_s, 1.0, 1e-12);
  EXPECT_NEAR(loaded.throughput.elementwise_bytes_per_s / p.throughput.elementwise_bytes_per_s, 1.0, 1e-12);
}

TEST(Calibration, OptionsAreChecked) {
  auto backend = runtime::make_cpu_backend();
  launcher::CalibrationOptions o = quick_options();
  o.inner = 100;
  try {
    launcher::calibrate(*backend, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "calibration: inner size 100 is not a multiple of the q8_0 block (32 elements)");
  }
  o = quick_options();
  o.gguf_type = DType::BF16;
  EXPECT_THROW(launcher::calibrate(*backend, o), Error);
  o = quick_options();
  o.seconds = 0;
  EXPECT_THROW(launcher::calibrate(*backend, o), Error);
}

int run_bench(const std::string& args, const std::string& log) {
  const std::string quick =
      " --tokens 64 --hidden 256 --inner 256 --attention-tokens 64 --heads 2 --head-dim 32 --stream-mib 4";
  const std::string cmd = ditrun_binary() + " --log-level warn bench" + quick + " " + args + " > " + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(BenchCommand, CalibrateWritesALoadableProfile) {
  const std::string dir = temp_dir("bench"), out = dir + "/mine.json";
  ASSERT_EQ(run_bench("--calibrate --out " + out + " --id my-host --seconds 0.05", dir + "/log"), 0) << slurp(dir + "/log");
  const partition::HardwareProfile p = partition::load_profile(out);
  EXPECT_EQ(p.id, "my-host");
  EXPECT_EQ(p.kind, partition::HardwareKind::cpu);
  const std::string log = slurp(dir + "/log");
  EXPECT_NE(log.find("gemm bf16"), std::string::npos) << log;
  EXPECT_NE(log.find("ratio"), std::string::npos) << log;
  EXPECT_NE(log.find("wrote " + out), std::string::npos) << log;
  // Only the profile: no temporary file left beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);  // mine.json + log
}

TEST(BenchCommand, UnwritableOutputFailsBeforeMeasuring) {
  const std::string dir = temp_dir("bench-bad"), out = dir + "/missing/mine.json";
  EXPECT_EQ(run_bench("--calibrate --out " + out + " --seconds 0.05", dir + "/log"), 2);
  const std::string log = slurp(dir + "/log");
  EXPECT_NE(log.find("ditrun: error: " + out + ": directory '" + dir + "/missing' does not exist"), std::string::npos)
      << log;
  EXPECT_EQ(log.find("measuring"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir + "/missing"));
}

}  // namespace
}  // namespace ditrun::test
