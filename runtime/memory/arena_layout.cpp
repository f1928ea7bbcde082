#include "runtime/memory/arena_layout.h"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/core/units.h"

namespace ditrun::runtime {
namespace {
constexpr uint64_t kGranularity = 2ull << 20;
uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }
}  // namespace

uint64_t activation_slack(uint64_t activation_bytes) { return activation_bytes / 8 + (64ull << 20); }

uint64_t weight_device_bytes(uint64_t stored_bytes, uint64_t scale_count, uint64_t alignment) {
  return round_up(std::max<uint64_t>(stored_bytes, 1), alignment) +
         (scale_count ? round_up(scale_count * sizeof(float), alignment) : 0);
}

ArenaLayout layout_arena(const ArenaRequest& r) {
  ArenaLayout l;
  l.resident_bytes = r.resident_bytes;
  l.prefetch_depth = r.prefetch_depth;
  l.slots_bytes = uint64_t(std::max(r.prefetch_depth, 0)) * r.slot_bytes;
  l.activation_bytes = r.activation_bytes + activation_slack(r.activation_bytes);
  l.workspace_bytes = r.workspace.total();
  l.total_bytes = round_up(l.resident_bytes + l.slots_bytes + l.activation_bytes + l.workspace_bytes, kGranularity);
  return l;
}

WorkspaceNeeds estimate_workspace(std::span<const Weight* const> weights, uint64_t activation_bytes,
                                  uint64_t element_bytes) {
  WorkspaceNeeds n;
  n.gemm_bytes = 32ull << 20;       // cuBLAS's recommendation for Hopper
  n.attention_bytes = 256ull << 20;  // the CUDA backend's cap on a fused attention plan's workspace
  const DType activation = element_bytes == 4 ? DType::F32 : DType::BF16;
  bool fp8 = false;
  for (const Weight* w : weights) {
    if (w->rows() > 1 && !(w->storage == activation && w->scale_layout == ScaleLayout::None))
      n.dequantized_weight_bytes = std::max(n.dequantized_weight_bytes, uint64_t(w->numel()) * element_bytes);
    fp8 = fp8 || w->storage == DType::F8_E4M3;
  }
  if (fp8) n.quantized_input_bytes = activation_bytes / 2;
  return n;
}

std::string ArenaLayout::describe() const {
  std::string slots = prefetch_depth > 0
                          ? fmt::format(" + {} slot{} x {}", prefetch_depth, prefetch_depth == 1 ? "" : "s",
                                        format_bytes(slots_bytes / uint64_t(prefetch_depth)))
                          : "";
  return fmt::format("resident weights {}{} + activations {} + workspace {} = {}", format_bytes(resident_bytes), slots,
                     format_bytes(activation_bytes), format_bytes(workspace_bytes), format_bytes(total_bytes));
}

}  // namespace ditrun::runtime
