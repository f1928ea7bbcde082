#include "runtime/exec/executor.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace ditrun::runtime {

HostTensor run_model(Backend& backend, const Model& model, const WeightLookup& weights, const HostTensors& inputs,
                     const BlockObserver& observer) {
  using Clock = std::chrono::steady_clock;
  ActivationState state = model.prologue(backend, weights, inputs);
  for (const auto& block : model.blocks()) {
    const auto start = Clock::now();
    block->forward(backend, weights, state);
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
  return model.epilogue(backend, weights, state);
}

}  // namespace ditrun::runtime
