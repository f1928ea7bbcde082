#include "runtime/exec/model_call.h"

#include "runtime/core/error.h"
#include "runtime/exec/stage.h"

namespace ditrun::runtime {

HostTensor run_model(Backend& backend, const Model& model, WeightStore& weights, const HostTensors& inputs,
                     const BlockObserver& observer) {
  const UnitRange all{0, model.blocks().size() + 2};
  StageOutput out = run_stage(backend, model, weights, all, &inputs, {}, observer);
  return std::move(*out.output);
}

}  // namespace ditrun::runtime
