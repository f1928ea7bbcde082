// Encoded prompts kept for reuse: the same prompt (and negative prompt) through the same
// encoders gives the same tensors, so a job file of 100 jobs over 10 prompts encodes 10
// times. In memory for the run, and on disk in the run's folder (DIR/prompt-cache/, one
// safetensors file per encoding, written atomically) so that `--resume` and later runs into
// the same folder reuse them too. A file is used only when the full key it records matches.
#pragma once

#include <cstddef>
#include <functional>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "runtime/exec/model.h"

namespace ditrun::launcher {

class PromptCache {
 public:
  // `dir` "": memory only.
  explicit PromptCache(std::string dir) : dir_(std::move(dir)) {}

  // The tensors for `key`: remembered, read from the folder, or made by `encode` (and kept).
  // `hit` (optional) says whether `encode` was spared.
  runtime::HostTensors get(const std::string& key, const std::function<runtime::HostTensors()>& encode,
                           bool* hit = nullptr);

  size_t hits() const { return hits_; }
  size_t encodings() const { return encodings_; }

 private:
  std::string file_for(const std::string& key) const;
  const runtime::HostTensors& remember(const std::string& key, runtime::HostTensors tensors);

  // A Flux encoding is 8 MiB (512 x 4096 floats): memory keeps the latest ones, disk all.
  static constexpr size_t kInMemory = 64;

  std::string dir_;
  std::mutex mutex_;
  std::map<std::string, runtime::HostTensors> memory_;
  std::deque<std::string> order_;  // memory_'s keys, oldest first
  size_t hits_ = 0, encodings_ = 0;
};

}  // namespace ditrun::launcher
