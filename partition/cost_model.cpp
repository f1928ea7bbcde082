#include "partition/cost_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "runtime/core/error.h"

namespace ditrun::partition {

uint64_t ModelCost::weight_bytes() const {
  uint64_t total = 0;
  for (const auto& b : blocks) total += b.weight_bytes;
  return total;
}

uint64_t ModelCost::largest_block_bytes() const {
  uint64_t largest = 0;
  for (const auto& b : blocks) largest = std::max(largest, b.weight_bytes);
  return largest;
}

void validate(const ModelCost& model) {
  if (model.blocks.empty()) fail("model cost: no blocks");
  if (model.micro_batches < 1) fail("model cost: micro_batches {} is below 1", model.micro_batches);
  if (model.steps < 0) fail("model cost: steps {} is negative", model.steps);
  std::set<std::string_view> names;
  for (size_t i = 0; i < model.blocks.size(); ++i) {
    const BlockCost& b = model.blocks[i];
    if (b.name.empty()) fail("model cost: block {} has no name", i);
    if (!names.insert(b.name).second) fail("model cost: block '{}' appears twice", b.name);
    if (!std::isfinite(b.flops) || b.flops < 0) fail("model cost: block '{}': flops {} is not a count", b.name, b.flops);
    if (!std::isfinite(b.attention_flops) || b.attention_flops < 0)
      fail("model cost: block '{}': attention_flops {} is not a count", b.name, b.attention_flops);
    if (!std::isfinite(b.elementwise_bytes) || b.elementwise_bytes < 0)
      fail("model cost: block '{}': elementwise_bytes {} is not a count", b.name, b.elementwise_bytes);
    if (b.weight_class.empty() && b.flops > 0) fail("model cost: block '{}' has FLOPs but no weight class", b.name);
  }
}

double compute_seconds(const BlockCost& block, const Throughput& device, std::string_view device_name) {
  double gemm = 0;
  if (block.flops > 0 || block.weight_bytes > 0) {
    auto rate = device.gemm_flops.find(block.weight_class);
    if (rate == device.gemm_flops.end() || rate->second <= 0) {
      std::string have;
      for (const auto& [cls, flops] : device.gemm_flops) have += (have.empty() ? "" : ", ") + cls;
      fail("block '{}': weight class '{}' has no GEMM rate on {} (has {})", block.name, block.weight_class,
           device_name, have);
    }
    gemm = block.flops / rate->second;
    if (device.memory_bytes_per_s > 0)
      gemm = std::max(gemm, static_cast<double>(block.weight_bytes) / device.memory_bytes_per_s);
  }
  double attention = 0;
  if (block.attention_flops > 0) {
    if (device.attention_flops <= 0) fail("block '{}': {} has no attention rate", block.name, device_name);
    attention = block.attention_flops / device.attention_flops;
  }
  double elementwise = 0;
  if (block.elementwise_bytes > 0) {
    const double rate = device.elementwise_bytes_per_s > 0 ? device.elementwise_bytes_per_s : device.memory_bytes_per_s;
    if (rate <= 0) fail("block '{}': {} has no elementwise or memory rate", block.name, device_name);
    elementwise = block.elementwise_bytes / rate;
  }
  return gemm + attention + elementwise;
}

double shared_compute_seconds(const BlockCost& block, const Throughput& device, std::string_view device_name,
                              StepSharing sharing) {
  if (sharing.sequence < 1 || sharing.cfg < 1)
    fail("block '{}': sharing a step over {} x {} ranks", block.name, sharing.sequence, sharing.cfg);
  BlockCost share = block;
  const double n = sharing.ranks();
  share.flops /= n;
  share.attention_flops /= n;
  share.elementwise_bytes /= n;
  return compute_seconds(share, device, device_name) + exchange_seconds(block, device, sharing);
}

double exchange_seconds(const BlockCost& block, const Throughput& device, StepSharing sharing) {
  if (sharing.sequence < 2 || block.exchange_bytes <= 0) return 0;
  const double n = sharing.sequence;
  const double mine = block.exchange_bytes / double(sharing.cfg) / n;  // this rank's q, k, v and output
  const double ring = sharing.ring > 0 ? sharing.ring : 1, ulysses = n / ring;
  // The exchange goes through host memory (runtime/exec/sequence_parallel.h), at the rate
  // between device and host (a memcpy on the CPU backend, PCIe on a GPU).
  if (device.host_to_device_bytes_per_s <= 0) return std::numeric_limits<double>::infinity();
  double bytes = 0;
  if (ulysses > 1) bytes += 2 * mine + mine * (ulysses - 1) / ulysses;
  if (ring > 1) bytes += (ring - 1) * 3 * (mine / 2) + ring * (mine / 4);
  return bytes / device.host_to_device_bytes_per_s;
}

double host_to_device_seconds(uint64_t bytes, const Throughput& device) {
  if (bytes == 0) return 0;
  if (device.host_to_device_bytes_per_s <= 0) return std::numeric_limits<double>::infinity();
  return static_cast<double>(bytes) / device.host_to_device_bytes_per_s;
}

double device_to_device_seconds(uint64_t bytes, const Throughput& from, const Throughput& to) {
  if (bytes == 0) return 0;
  const double rate = std::min(from.device_to_device_bytes_per_s, to.device_to_device_bytes_per_s);
  if (rate <= 0) return std::numeric_limits<double>::infinity();
  return static_cast<double>(bytes) / rate;
}

}  // namespace ditrun::partition
