// Out-of-line parts of the Backend interface shared by every backend.
#include "runtime/backend/backend.h"

#include "runtime/core/error.h"

namespace ditrun::runtime {

std::string_view precision_name(Precision p) {
  switch (p) {
    case Precision::F32: return "f32";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

void Backend::attention_lse(const Tensor&, const Tensor&, const Tensor&, Tensor&, Tensor&, int64_t,
                            std::span<const int64_t>) {
  fail("the {} backend has no attention with log-sum-exp (ring attention) yet", name());
}

}  // namespace ditrun::runtime
