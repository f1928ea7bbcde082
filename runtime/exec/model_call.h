// One model call on one backend: prologue → every block in order → epilogue, each unit
// bracketed by the WeightStore's acquire/release so streamed blocks arrive in time. The
// pipeline executors split the same loop across ranks; this is the single-rank case every one
// of them must reproduce exactly.
#pragma once

#include <functional>
#include <string>

#include "runtime/exec/weight_store.h"

namespace ditrun::runtime {

// Called after each block with the tensors the block reports (Block::outputs), downloaded.
using BlockObserver = std::function<void(const std::string& name, const HostTensor& value)>;

// The store must hold every unit of the model.
HostTensor run_model(Backend& backend, const Model& model, WeightStore& weights, const HostTensors& inputs,
                     const BlockObserver& observer = {});

}  // namespace ditrun::runtime
