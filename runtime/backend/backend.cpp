// Out-of-line parts of the Backend interface shared by every backend.
#include "runtime/backend/backend.h"

namespace ditrun::runtime {

std::string_view precision_name(Precision p) {
  switch (p) {
    case Precision::F32: return "f32";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

}  // namespace ditrun::runtime
