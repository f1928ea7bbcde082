// One model call on one backend: prologue → every block in order → epilogue. The pipeline
// and streaming executors of the planner split the same loop across ranks and prefetch
// slots; this is the single-device case every one of them must reproduce exactly.
#pragma once

#include <functional>
#include <string>

#include "runtime/exec/model.h"

namespace ditrun::runtime {

// Called after each block with the tensors the block reports (Block::outputs), downloaded.
using BlockObserver = std::function<void(const std::string& name, const HostTensor& value)>;

HostTensor run_model(Backend& backend, const Model& model, const WeightLookup& weights, const HostTensors& inputs,
                     const BlockObserver& observer = {});

}  // namespace ditrun::runtime
