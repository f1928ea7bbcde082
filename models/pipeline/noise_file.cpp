#include "models/pipeline/noise_file.h"

#include <algorithm>
#include <cmath>

#include "models/formats/mapped_file.h"
#include "models/formats/safetensors.h"
#include "runtime/core/error.h"

namespace ditrun::models {

HostTensor load_noise_file(const std::string& path, const Shape& expected) {
  const formats::MappedFile file(path);
  const formats::SafetensorsIndex index = formats::parse_safetensors(file.bytes(), path);
  const auto it = std::find_if(index.tensors.begin(), index.tensors.end(),
                               [](const formats::TensorRecord& t) { return t.name == "noise"; });
  if (it == index.tensors.end()) {
    std::string names;
    for (const auto& t : index.tensors) names += (names.empty() ? "" : ", ") + t.name;
    fail("{}: no tensor named 'noise' (the file has: {})", path, names.empty() ? "no tensors" : names);
  }
  const formats::TensorRecord& t = *it;
  if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
    fail("{}: tensor 'noise' is {}; expected F32, F16 or BF16", path, dtype_name(t.dtype));
  if (t.shape.size() != 3 && t.shape.size() != 4)
    fail("{}: tensor 'noise' has shape {}; expected [C, H, W] or [C, F, H, W]", path, shape_string(t.shape));
  if (!expected.empty() && t.shape != expected)
    fail("{}: tensor 'noise' has shape {}; the job's latent is {}", path, shape_string(t.shape),
         shape_string(expected));

  HostTensor noise(t.shape);
  dequantize_to_f32(t.dtype, file.bytes().subspan(t.offset, t.nbytes), noise.data);
  // A NaN or inf in the start latent would silently poison every step; refuse it here.
  for (size_t i = 0; i < noise.data.size(); ++i)
    if (!std::isfinite(noise.data[i])) fail("{}: tensor 'noise' element {} is not finite", path, i);
  return noise;
}

}  // namespace ditrun::models
