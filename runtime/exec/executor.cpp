#include "runtime/exec/executor.h"

#include <spdlog/spdlog.h>

#include <chrono>

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

HostTensor run_model(Backend& backend, const Model& model, WeightStore& weights, const HostTensors& inputs,
                     const BlockObserver& observer) {
  using Clock = std::chrono::steady_clock;
  try {
    ActivationState state =
        with_unit(weights, kPrologueUnit, [&] { return model.prologue(backend, weights, inputs); });
    for (const auto& block : model.blocks()) {
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
    return with_unit(weights, kEpilogueUnit, [&] { return model.epilogue(backend, weights, state); });
  } catch (...) {
    // A call that stopped half-way leaves the streaming cycle mid-model; the next call starts
    // at the prologue.
    weights.restart_cycle();
    throw;
  }
}

}  // namespace ditrun::runtime
