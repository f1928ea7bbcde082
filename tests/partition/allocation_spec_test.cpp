#include "partition/allocation_spec.h"

#include <gtest/gtest.h>

#include "runtime/core/units.h"
#include "runtime/core/error.h"

namespace ditrun::partition {
namespace {

std::string parse_error(std::string_view text) {
  try {
    parse_allocation(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// Two 24 GiB GPUs (23 GiB free) and 64 GiB host RAM (60 GiB free).
DeviceInventory two_gpus() {
  const HardwareProfile& p = *find_builtin_profile("rtx4090");
  std::vector<DeviceSpec> gpus{device_from_profile(p, "cuda:0"), device_from_profile(p, "cuda:1")};
  for (auto& g : gpus) {
    g.total_bytes = 24 * GiB;
    g.free_bytes = 23 * GiB;
  }
  return make_inventory(std::move(gpus), 64 * GiB, 60 * GiB);
}

std::string resolve_error(std::string_view text, const BudgetOptions& options = {}) {
  try {
    resolve_budgets(parse_allocation(text), two_gpus(), options);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(AllocationSpec, ParsesBytesRestFractionsAndRatios) {
  auto spec = parse_allocation("cuda:0,12gb;CUDA:1, 1.5GiB ; cpu,*;");
  ASSERT_EQ(spec.entries.size(), 3u);
  EXPECT_EQ(spec.entries[0].device, "cuda:0");
  EXPECT_EQ(spec.entries[0].kind, AllocationEntry::Kind::bytes);
  EXPECT_EQ(spec.entries[0].bytes, 12 * GiB);
  EXPECT_EQ(spec.entries[1].device, "cuda:1");
  EXPECT_EQ(spec.entries[1].bytes, 3 * GiB / 2);
  EXPECT_EQ(spec.entries[2].kind, AllocationEntry::Kind::rest);
  EXPECT_EQ(spec.entries[2].index, 3);

  spec = parse_allocation("cuda:0,0.5;cpu,0.9");
  EXPECT_EQ(spec.entries[0].kind, AllocationEntry::Kind::fraction);
  EXPECT_DOUBLE_EQ(spec.entries[1].value, 0.9);

  spec = parse_allocation("cuda:0,40%;cuda:1,40%;cpu,20%");
  EXPECT_TRUE(spec.uses_ratios());
  EXPECT_DOUBLE_EQ(spec.entries[2].value, 20);
  EXPECT_TRUE(parse_allocation("  ").entries.empty());
}

TEST(AllocationSpec, ErrorsPointAtTheToken) {
  EXPECT_EQ(parse_error("cuda:0,12gb;cuda:1,x"),
            "allocation 'cuda:0,12gb;cuda:1,x': token 2 'cuda:1,x': 'x' is not a size (use 12gb, 40% or 0.5)");
  EXPECT_EQ(parse_error("cuda:0,12gb;;cpu,*"), "allocation 'cuda:0,12gb;;cpu,*': token 2 '': empty (write device,amount such as cuda:0,12gb)");
  EXPECT_EQ(parse_error("cuda:0 12gb"),
            "allocation 'cuda:0 12gb': token 1 'cuda:0 12gb': expected device,amount (such as cuda:0,12gb or cpu,*)");
  EXPECT_EQ(parse_error("cuda:0,1,2"), "allocation 'cuda:0,1,2': token 1 'cuda:0,1,2': expected device,amount (such as cuda:0,12gb or cpu,*)");
  EXPECT_EQ(parse_error("gpu0,12gb"),
            "allocation 'gpu0,12gb': token 1 'gpu0,12gb': 'gpu0' is not a device (use cuda:0, cuda:1, ... or cpu)");
  EXPECT_EQ(parse_error("cuda:0,12gb;cpu,*;cuda:0,1gb"),
            "allocation 'cuda:0,12gb;cpu,*;cuda:0,1gb': token 3 'cuda:0,1gb': cuda:0 is already given by token 1");
  EXPECT_EQ(parse_error("cuda:0,60%;cuda:1,60%"),
            "allocation 'cuda:0,60%;cuda:1,60%': token 2 'cuda:1,60%': ratios add up to 120% by here, more than 100%");
  EXPECT_EQ(parse_error("cuda:0,150%"),
            "allocation 'cuda:0,150%': token 1 'cuda:0,150%': '150%' is not a ratio above 0% and at most 100%");
  EXPECT_EQ(parse_error("cuda:0,0%"), "allocation 'cuda:0,0%': token 1 'cuda:0,0%': '0%' is not a ratio above 0% and at most 100%");
  EXPECT_EQ(parse_error("cuda:0,40%;cpu,*"),
            "allocation 'cuda:0,40%;cpu,*': token 2 'cpu,*': cannot mix ratios with sizes (token 1 is 'cuda:0,40%'): "
            "ratios share the model, sizes share memory");
  EXPECT_EQ(parse_error("cuda:0,12gb;cpu,20%"),
            "allocation 'cuda:0,12gb;cpu,20%': token 2 'cpu,20%': cannot mix ratios with sizes (token 1 is "
            "'cuda:0,12gb'): ratios share the model, sizes share memory");
  EXPECT_EQ(parse_error("cuda:0,2"), "allocation 'cuda:0,2': token 1 'cuda:0,2': '2' is not a fraction in [0, 1]; write 2gb for a size");
  EXPECT_EQ(parse_error("cuda:0,"), "allocation 'cuda:0,': token 1 'cuda:0,': '' is not a size (use 12gb, 40% or 0.5)");
}

TEST(AllocationSpec, ResolvesBytesRestAndFractions) {
  BudgetOptions options;
  options.reserve_vram_bytes = 1 * GiB;
  const Budgets b = resolve_budgets(parse_allocation("cuda:1,12gb;cuda:0,0.5;cpu,*"), two_gpus(), options);
  ASSERT_EQ(b.gpus.size(), 2u);
  EXPECT_EQ(b.gpus[0].device, "cuda:0");  // inventory order, whatever the spec's order
  EXPECT_EQ(b.gpus[0].bytes, 12 * GiB);  // half of the 24 GiB total
  EXPECT_EQ(b.gpus[1].bytes, 12 * GiB);
  EXPECT_EQ(b.host_bytes, 60 * GiB);
  EXPECT_EQ(b.describe(), "cuda:0 12 GiB, cuda:1 12 GiB, cpu 60 GiB");
}

TEST(AllocationSpec, RestIsFreeMinusReserveAndUnnamedDevicesGetNothing) {
  BudgetOptions options;
  options.reserve_vram_bytes = 2 * GiB;
  options.reserve_host_bytes = 4 * GiB;
  Budgets b = resolve_budgets(parse_allocation("cuda:1,*;cpu,*"), two_gpus(), options);
  ASSERT_EQ(b.gpus.size(), 1u);
  EXPECT_EQ(b.gpus[0].device, "cuda:1");
  EXPECT_EQ(b.gpus[0].bytes, 21 * GiB);
  EXPECT_EQ(b.host_bytes, 56 * GiB);
  b = resolve_budgets(parse_allocation("cuda:0,*"), two_gpus());
  EXPECT_EQ(b.host_bytes, 0u);  // no cpu entry: nothing may be pinned
}

TEST(AllocationSpec, EmptySpecUsesEverything) {
  BudgetOptions options;
  options.reserve_vram_bytes = 1 * GiB;
  const Budgets b = resolve_budgets(parse_allocation(""), two_gpus(), options);
  ASSERT_EQ(b.gpus.size(), 2u);
  EXPECT_EQ(b.gpus[1].bytes, 22 * GiB);
  EXPECT_EQ(b.host_bytes, 60 * GiB);
}

TEST(AllocationSpec, RatiosShareTheModelAndAreNormalized) {
  BudgetOptions options;
  options.model_bytes = 20 * GiB;
  options.gpu_overhead_bytes = 1 * GiB;
  const Budgets b = resolve_budgets(parse_allocation("cuda:0,8%;cuda:1,8%;cpu,4%"), two_gpus(), options);
  EXPECT_EQ(b.gpus[0].bytes, 9 * GiB);  // 40% of 20 GiB + 1 GiB overhead
  EXPECT_EQ(b.gpus[1].bytes, 9 * GiB);
  EXPECT_EQ(b.host_bytes, 4 * GiB);  // 20%, no overhead on the host
}

TEST(AllocationSpec, ResolveErrorsNameTokenAndDevice) {
  EXPECT_EQ(resolve_error("cuda:0,12gb;cuda:7,1gb"),
            "allocation 'cuda:0,12gb;cuda:7,1gb': token 2 'cuda:7,1gb': no device cuda:7 (have cuda:0, cuda:1, cpu)");
  BudgetOptions reserve;
  reserve.reserve_vram_bytes = 1 * GiB;
  EXPECT_EQ(resolve_error("cuda:0,30gb", reserve),
            "allocation 'cuda:0,30gb': token 1 'cuda:0,30gb': asks 30 GiB but cuda:0 has 22 GiB usable (23 GiB free, 1 "
            "GiB reserved); use * for all of it");
  EXPECT_EQ(resolve_error("cuda:0,1.0"),
            "allocation 'cuda:0,1.0': token 1 'cuda:0,1.0': asks 24 GiB but cuda:0 has 23 GiB usable (23 GiB free, 0 B "
            "reserved); use * for all of it");
  EXPECT_EQ(resolve_error("cuda:0,50%;cpu,50%"),
            "allocation 'cuda:0,50%;cpu,50%': token 1 'cuda:0,50%': ratios are shares of the model, whose size is not "
            "known here; use sizes");
  BudgetOptions big;
  big.model_bytes = 100 * GiB;
  EXPECT_EQ(resolve_error("cuda:0,50%;cpu,50%", big),
            "allocation 'cuda:0,50%;cpu,50%': token 1 'cuda:0,50%': asks 50 GiB but cuda:0 has 23 GiB usable (23 GiB "
            "free, 0 B reserved); use * for all of it");
}

}  // namespace
}  // namespace ditrun::partition
