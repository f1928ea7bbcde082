// One model call of a reference case shared by sp x cfg ranks (threads on local channels), as
// the stage worker shares a step: rank r = c * sp + s holds batch item c and token share s.
// The CPU tests and the GPU tests run it on their own backends.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/exec/model.h"

namespace ditrun::test {

struct SharedCallResult {
  HostTensor output;                // rank 0's
  std::vector<std::string> errors;  // per rank, "" when none (a rank other than 0 that returned
                                    // an output, or rank 0 without one, is an error too)
  std::string first_error() const;
};

// `ring`: the sequence ranks' ring degree (0: by the head count).
SharedCallResult shared_reference_call(const std::string& model, int sp, int cfg, int ring, const runtime::HostTensors& inputs,
                                 const std::function<std::unique_ptr<runtime::Backend>()>& make_backend);

}  // namespace ditrun::test
