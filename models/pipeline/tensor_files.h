// Host tensors to and from safetensors files: the `forward` command's inputs and outputs,
// job conditioning and latents.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/exec/model.h"

namespace ditrun::models {

// Every tensor whose name starts with `prefix`, decoded to f32, keyed by the rest of its
// name ("in.img" → "img" for prefix "in."). Fails naming the file.
runtime::HostTensors read_host_tensors(const std::string& path, std::string_view prefix = "");

// Writes F32 tensors in the given order, atomically (temp file + rename).
void write_host_tensors(const std::string& path, const std::vector<std::pair<std::string, const HostTensor*>>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace ditrun::models
