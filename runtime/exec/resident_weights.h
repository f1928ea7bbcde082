// The simplest weight store: every weight a model reads is loaded onto the backend once and
// stays there. (The planner's streaming store, with prefetch slots for host-resident blocks,
// implements the same WeightLookup.)
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/exec/model.h"

namespace ditrun::runtime {

class ResidentWeights final : public WeightLookup {
 public:
  // `find_source` maps a name to its Weight (nullptr when the checkpoint lacks it).
  template <class FindSource>
  ResidentWeights(Backend& backend, const std::vector<std::string>& names, FindSource&& find_source) {
    for (const std::string& name : names)
      if (const Weight* w = find_source(name)) weights_.emplace(name, backend.load_weight(*w, backend.compute_stream()));
    backend.synchronize(backend.compute_stream());
  }

  const DeviceWeight* find(std::string_view name) const override {
    auto it = weights_.find(name);
    return it == weights_.end() ? nullptr : &it->second;
  }
  uint64_t stored_bytes() const;

 private:
  std::map<std::string, DeviceWeight, std::less<>> weights_;
};

// Every weight name a model reads: prologue, blocks, epilogue.
std::vector<std::string> all_weight_names(const Model& model);

}  // namespace ditrun::runtime
