#include "runtime/exec/stage.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "runtime/core/error.h"

namespace ditrun::runtime {
namespace {

// Runs `body` with `unit`'s weights acquired.
template <class Body>
auto with_unit(WeightStore& weights, std::string_view unit, Body&& body) {
  weights.acquire(unit);
  if constexpr (std::is_void_v<decltype(body())>) {
    body();
    weights.release(unit);
  } else {
    auto result = body();
    weights.release(unit);
    return result;
  }
}

}  // namespace

UnitRange held_units(const Model& model, const WeightStore& weights) {
  const auto units = model_units(model);
  UnitRange range{units.size(), 0};
  for (size_t i = 0; i < units.size(); ++i) {
    if (!weights.holds(units[i].name)) continue;
    if (range.end != 0 && range.end != i)
      fail("this rank holds units that are not contiguous ('{}' after a gap): a stage is a contiguous run of blocks",
           units[i].name);
    range.first = std::min(range.first, i);
    range.end = i + 1;
  }
  if (range.end == 0) fail("this rank holds no unit of the model");
  return range;
}

StageOutput run_stage(Backend& backend, const Model& model, WeightStore& weights, UnitRange range,
                      const HostTensors* inputs, ActivationState state, const BlockObserver& observer,
                      const JobSplit& split) {
  using Clock = std::chrono::steady_clock;
  const size_t blocks = model.blocks().size();
  if (range.first >= range.end || range.end > blocks + 2)
    fail("stage: unit range [{}, {}) is not within the model's {} units", range.first, range.end, blocks + 2);
  if (range.has_prologue() && !inputs) fail("stage: the first stage needs the network inputs");
  StageOutput out;
  try {
    if (range.has_prologue())
      state = with_unit(weights, kPrologueUnit, [&] { return model.prologue(backend, weights, *inputs); });
    if (split.active()) {
      const StateLayout layout = model.state_layout(state);
      if (split.batch) split.batch->split(backend, layout, state);
      if (split.sequence) split.sequence->split(backend, layout, state);
    }
    for (size_t u = std::max<size_t>(range.first, 1); u < std::min(range.end, blocks + 1); ++u) {
      const auto& block = model.blocks()[u - 1];
      const auto start = Clock::now();
      with_unit(weights, block->name(), [&] { block->forward(backend, weights, state); });
      if (observer) {
        for (const auto& [name, tensor] : block->outputs(state)) {
          HostTensor host(tensor.shape());
          backend.download(tensor, host.data, backend.compute_stream());
          backend.synchronize(backend.compute_stream());
          observer(name, host);
        }
      }
      if (spdlog::should_log(spdlog::level::trace)) {
        backend.synchronize(backend.compute_stream());
        spdlog::trace("{}: {:.3f} s", block->name(), std::chrono::duration<double>(Clock::now() - start).count());
      }
    }
    if (split.active()) {
      // Tokens first (their layout is the split state's), then the batch items.
      const StateLayout layout = model.state_layout(state);
      bool first = true;
      if (split.sequence) first = split.sequence->gather(backend, layout, state);
      if (first && split.batch) first = split.batch->gather(backend, model.state_layout(state), state);
      if (!first) {
        // The first member goes on; this one's share is in its hands. A skipped epilogue would
        // leave the streaming cycle mid-call: it restarts, as after a failure.
        if (range.has_epilogue(model)) weights.restart_cycle();
        out.shared = false;
        return out;
      }
    }
    if (range.has_epilogue(model))
      out.output = with_unit(weights, kEpilogueUnit, [&] { return model.epilogue(backend, weights, state); });
    else
      out.state = std::move(state);
  } catch (...) {
    // A call that stopped half-way leaves the streaming cycle mid-stage; the next call
    // starts at the stage's first unit.
    weights.restart_cycle();
    throw;
  }
  return out;
}

}  // namespace ditrun::runtime
