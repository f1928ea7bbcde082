// A job's initial noise given as a file instead of a seed: to reproduce another program's
// run, or to replay a latent. The file is safetensors with one tensor named `noise`, F32,
// F16 or BF16, shaped like one latent: [C, H, W] (image) or [C, F, H, W] (video), no batch
// dimension. (The seeded alternative is runtime/sampling/noise.h.)
#pragma once

#include <string>

#include "runtime/core/shape.h"
#include "runtime/core/tensor.h"

namespace ditrun::models {

// Reads `noise` from `path` as f32. When `expected` is not empty the shape must equal it
// (the job's latent shape). Fails with one line naming the file on: an unreadable or
// malformed file, no `noise` tensor, another dtype, another rank or shape, a non-finite value.
HostTensor load_noise_file(const std::string& path, const Shape& expected = {});

}  // namespace ditrun::models
