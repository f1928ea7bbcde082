#include "partition/device_spec.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/core/units.h"
#include "runtime/core/error.h"

namespace ditrun::partition {
namespace {

std::string override_error(std::string_view text) {
  try {
    parse_device_override(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(DeviceOverride, CountTimesProfile) {
  const DeviceInventory inv = parse_device_override("4x h100-80gb");
  const auto gpus = inv.gpus();
  ASSERT_EQ(gpus.size(), 4u);
  EXPECT_EQ(gpus[3]->name, "cuda:3");
  EXPECT_EQ(gpus[0]->model, "NVIDIA H100 80GB HBM3 (SXM5)");
  EXPECT_EQ(gpus[0]->total_bytes, 81559 * MiB);
  EXPECT_EQ(gpus[0]->free_bytes, gpus[0]->total_bytes);
  EXPECT_EQ(gpus[0]->compute_capability, "9.0");
  EXPECT_EQ(inv.host().total_bytes, 4 * 256 * GiB);  // DGX-like default host RAM per GPU
  EXPECT_EQ(inv.names(), "cuda:0, cuda:1, cuda:2, cuda:3, cpu");
}

TEST(DeviceOverride, SizesMakeGenericGpus) {
  const DeviceInventory inv = parse_device_override("2x 24gb");
  ASSERT_EQ(inv.gpus().size(), 2u);
  EXPECT_EQ(inv.gpus()[1]->total_bytes, 24 * GiB);
  EXPECT_EQ(inv.gpus()[1]->throughput, find_builtin_profile("generic-24gb")->throughput);
  EXPECT_EQ(parse_device_override("1x 48gib").gpus()[0]->total_bytes, 48 * GiB);
}

TEST(DeviceOverride, MixedListAliasesAndHost) {
  const DeviceInventory inv = parse_device_override("h100-80gb, RTX4090 ,2 x rtx3090,host=128gb");
  const auto gpus = inv.gpus();
  ASSERT_EQ(gpus.size(), 4u);
  EXPECT_EQ(gpus[1]->model, "NVIDIA GeForce RTX 4090");
  EXPECT_EQ(gpus[3]->model, "NVIDIA GeForce RTX 3090");
  EXPECT_EQ(gpus[3]->name, "cuda:3");
  EXPECT_EQ(inv.host().total_bytes, 128 * GiB);
  EXPECT_EQ(parse_device_override("cpu,host=32gb").gpus().size(), 0u);
  EXPECT_EQ(parse_device_override("cpu").host().total_bytes, 64 * GiB);
}

TEST(DeviceOverride, ErrorsPointAtTheItem) {
  EXPECT_EQ(override_error("4x h100-80gb,foo"),
            "devices '4x h100-80gb,foo': item 2 'foo': unknown GPU 'foo' (known: h100-80gb, h200-141gb, rtx4090-24gb, "
            "rtx3090-24gb, generic-24gb, or a size like 24gb)");
  EXPECT_EQ(override_error("0x h100"), "devices '0x h100': item 1 '0x h100': count '0' is not between 1 and 64");
  EXPECT_EQ(override_error("h100,,h100"), "devices 'h100,,h100': item 2 '': empty (write e.g. 4x h100-80gb or 2x 24gb)");
  EXPECT_EQ(override_error("h100,host=lots"), "devices 'h100,host=lots': item 2 'host=lots': 'lots' is not a size (use host=128gb)");
  EXPECT_EQ(override_error("host=1gb,host=2gb"), "devices 'host=1gb,host=2gb': item 2 'host=2gb': host RAM given twice");
  EXPECT_EQ(override_error("cpu,h100"), "devices 'cpu,h100': 'cpu' means no GPU, but GPUs are listed too");
  EXPECT_EQ(override_error("2x cpu"),
            "devices '2x cpu': item 1 '2x cpu': unknown GPU 'cpu' (known: h100-80gb, h200-141gb, rtx4090-24gb, "
            "rtx3090-24gb, generic-24gb, or a size like 24gb)");
}

// Profile files (what `ditrun bench --calibrate` writes) stand in for built-in ids; the path
// keeps its case although the rest of an item is case-insensitive. ctest runs tests as parallel
// processes, so the directory is per process: a shared one was removed under a running test.
struct ProfileFiles {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ditrun-partition-profiles-" + std::to_string(::getpid()));
  HardwareProfile gpu = *find_builtin_profile("rtx4090");
  HardwareProfile host = *find_builtin_profile("cpu");

  ProfileFiles() {
    std::filesystem::create_directories(dir);
    gpu.id = "my-card";
    gpu.model = "Measured Card";
    gpu.memory_bytes = 20 * GiB;
    gpu.host_ram_per_device = 48 * GiB;
    gpu.throughput.gemm_flops["bf16"] = 99e12;
    host.id = "cpu-calibrated";
    host.model = "AMD EPYC (2 threads)";
    host.memory_bytes = 23 * GiB;
    host.throughput.gemm_flops["bf16"] = 85e9;
    std::ofstream(dir / "My-Card.json") << profile_to_json(gpu).dump();
    std::ofstream(dir / "Host.json") << profile_to_json(host).dump();
  }
  ~ProfileFiles() { std::filesystem::remove_all(dir); }
  std::string path(const char* name) const { return (dir / name).string(); }
};

TEST(DeviceOverride, ProfileFilesForGpusAndTheHost) {
  const ProfileFiles files;
  const DeviceInventory gpus = parse_device_override("2x " + files.path("My-Card.json") + ", h100");
  ASSERT_EQ(gpus.gpus().size(), 3u);
  EXPECT_EQ(gpus.gpus()[1]->model, "Measured Card");
  EXPECT_EQ(gpus.gpus()[1]->total_bytes, 20 * GiB);
  EXPECT_EQ(gpus.gpus()[1]->throughput, files.gpu.throughput);
  EXPECT_EQ(gpus.gpus()[2]->model, "NVIDIA H100 80GB HBM3 (SXM5)");
  EXPECT_EQ(gpus.host().total_bytes, 2 * 48 * GiB + 256 * GiB);
  EXPECT_EQ(gpus.host().throughput, find_builtin_profile("cpu")->throughput);

  // A cpu profile is the host: its rates, and its memory unless host= says otherwise.
  const DeviceInventory host_only = parse_device_override(" " + files.path("Host.json") + " ");
  EXPECT_TRUE(host_only.gpus().empty());
  EXPECT_EQ(host_only.host().throughput, files.host.throughput);
  EXPECT_EQ(host_only.host().model, "AMD EPYC (2 threads)");
  EXPECT_EQ(host_only.host().total_bytes, 23 * GiB);
  const DeviceInventory mixed = parse_device_override("rtx4090, " + files.path("Host.json") + ", host=32gb");
  EXPECT_EQ(mixed.gpus().size(), 1u);
  EXPECT_EQ(mixed.host().throughput, files.host.throughput);
  EXPECT_EQ(mixed.host().total_bytes, 32 * GiB);
}

TEST(DeviceOverride, ProfileFileErrorsPointAtTheItem) {
  const ProfileFiles files;
  const std::string host = files.path("Host.json");
  EXPECT_NE(override_error("2x " + host).find("is a cpu profile (the host's rates); it takes no count"), std::string::npos);
  EXPECT_NE(override_error(host + "," + host).find("item 2"), std::string::npos);
  EXPECT_NE(override_error(host + "," + host).find("a cpu profile is given twice"), std::string::npos);
  const std::string missing = override_error("h100, /nonexistent/Card.json");
  EXPECT_EQ(missing, "devices 'h100, /nonexistent/Card.json': item 2 '/nonexistent/card.json': hardware profile "
                     "/nonexistent/Card.json: cannot open");
}

TEST(DeviceInventory, MakeInventoryChecksNames) {
  DeviceSpec g = device_from_profile(*find_builtin_profile("h100"), "gpu0");
  EXPECT_THROW(make_inventory({g}, 1 * GiB, 1 * GiB), Error);
  g.name = "cuda:0";
  EXPECT_THROW(make_inventory({g, g}, 1 * GiB, 1 * GiB), Error);
  EXPECT_THROW(make_inventory({g}, 1 * GiB, 2 * GiB), Error);
  const DeviceInventory inv = make_inventory({g}, 8 * GiB, 6 * GiB);
  EXPECT_EQ(inv.host().free_bytes, 6 * GiB);
  EXPECT_EQ(inv.find("cuda:1"), nullptr);
}

TEST(HardwareProfiles, BuiltinsAreSaneAndSpecDerived) {
  ASSERT_EQ(builtin_profiles().size(), 6u);
  for (const auto& p : builtin_profiles()) {
    EXPECT_NE(p.source.find(p.kind == HardwareKind::gpu && p.id != "generic-24gb" ? "spec-sheet" : ""), std::string::npos) << p.id;
    for (const char* cls : {"bf16", "fp8", "gguf"}) EXPECT_GT(p.throughput.gemm_flops.at(cls), 0) << p.id << cls;
    if (p.kind == HardwareKind::gpu) {
      EXPECT_GT(p.throughput.host_to_device_bytes_per_s, 0);
      EXPECT_GT(p.throughput.device_to_device_bytes_per_s, 0);
    }
  }
  // Spot checks against the published numbers the table is derived from.
  const Throughput& h100 = find_builtin_profile("h100-80gb")->throughput;
  EXPECT_NEAR(h100.gemm_flops.at("bf16") / 989e12, 0.7, 0.01);
  EXPECT_NEAR(h100.host_to_device_bytes_per_s, 50e9, 1);
  EXPECT_LT(find_builtin_profile("rtx4090")->throughput.host_to_device_bytes_per_s, h100.host_to_device_bytes_per_s);
  EXPECT_GT(find_builtin_profile("h200")->throughput.memory_bytes_per_s, h100.memory_bytes_per_s);
}

TEST(HardwareProfiles, GpuNamesFromCudaMapToProfiles) {
  EXPECT_EQ(profile_for_gpu("NVIDIA H100 80GB HBM3", 80 * GiB).id, "h100-80gb");
  EXPECT_EQ(profile_for_gpu("NVIDIA H100 80GB HBM3", 80 * GiB).memory_bytes, 80 * GiB);
  EXPECT_EQ(profile_for_gpu("NVIDIA GeForce RTX 4090", 24 * GiB).id, "rtx4090-24gb");
  const HardwareProfile other = profile_for_gpu("NVIDIA A40", 48 * GiB);
  EXPECT_EQ(other.id, "generic-24gb");
  EXPECT_EQ(other.model, "NVIDIA A40");
  EXPECT_EQ(other.memory_bytes, 48 * GiB);
}

TEST(HardwareProfiles, JsonRoundTrip) {
  for (const auto& p : builtin_profiles()) EXPECT_EQ(profile_from_json(profile_to_json(p), p.id), p) << p.id;
}

// configs/hardware/*.json mirror the built-in table: editing one without the other fails here.
TEST(HardwareProfiles, ConfigFilesMirrorTheBuiltins) {
  const std::filesystem::path dir = std::filesystem::path(DITRUN_CONFIGS_DIR) / "hardware";
  for (const auto& p : builtin_profiles()) {
    const auto path = dir / (p.id + ".json");
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    EXPECT_EQ(load_profile(path), p) << path;
  }
}

std::string profile_error(nlohmann::json j) {
  try {
    profile_from_json(j, "test.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(HardwareProfiles, JsonErrorsNameTheField) {
  const nlohmann::json good = profile_to_json(*find_builtin_profile("rtx4090"));
  auto without = [&](const char* key) {
    nlohmann::json j = good;
    j.erase(key);
    return j;
  };
  auto with = [&](const char* key, nlohmann::json v) {
    nlohmann::json j = good;
    j[key] = std::move(v);
    return j;
  };
  EXPECT_EQ(profile_error(without("gemm_tflops")), "hardware profile test.json: field 'gemm_tflops': missing");
  EXPECT_EQ(profile_error(with("kind", "tpu")), "hardware profile test.json: field 'kind': 'tpu' is not gpu or cpu");
  EXPECT_EQ(profile_error(with("memory", "lots")),
            "hardware profile test.json: field 'memory': 'lots' is not a size (use 80gib, 24576mib or bytes)");
  EXPECT_EQ(profile_error(with("host_to_device_gb_per_s", 0)),
            "hardware profile test.json: field 'host_to_device_gb_per_s': 0 is not a positive rate");
  EXPECT_EQ(profile_error(with("gemm_tflops", {{"bf16", "fast"}})),
            "hardware profile test.json: field 'gemm_tflops.bf16': must be a number");
  EXPECT_EQ(profile_error(with("schema", "other/2")),
            "hardware profile test.json: field 'schema': \"other/2\" is not \"ditrun.hardware/1\"");
  EXPECT_EQ(profile_error(nlohmann::json::array()), "hardware profile test.json: not a JSON object");
}

TEST(HardwareProfiles, LoadReportsUnreadableFiles) {
  const auto path = std::filesystem::temp_directory_path() / ("ditrun-bad-profile-" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << "{ not json";
  EXPECT_THROW(load_profile(path), Error);
  std::filesystem::remove(path);
  EXPECT_THROW(load_profile("/nonexistent/profile.json"), Error);
}

}  // namespace
}  // namespace ditrun::partition
