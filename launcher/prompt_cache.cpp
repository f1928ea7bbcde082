#include "launcher/prompt_cache.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "models/formats/checkpoint.h"
#include "models/pipeline/tensor_files.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

constexpr const char* kKeyMetadata = "ditrun.prompt_key";

uint64_t fnv1a(const std::string& s, uint64_t h) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

}  // namespace

std::string PromptCache::file_for(const std::string& key) const {
  // Two differently seeded 64-bit hashes name the file; the key inside decides.
  return (std::filesystem::path(dir_) /
          fmt::format("{:016x}{:016x}.safetensors", fnv1a(key, 0xCBF29CE484222325ull), fnv1a(key, 0x84222325CBF29CE4ull)))
      .string();
}

const runtime::HostTensors& PromptCache::remember(const std::string& key, runtime::HostTensors tensors) {
  if (memory_.size() >= kInMemory) {
    memory_.erase(order_.front());
    order_.pop_front();
  }
  order_.push_back(key);
  return memory_.emplace(key, std::move(tensors)).first->second;
}

runtime::HostTensors PromptCache::get(const std::string& key, const std::function<runtime::HostTensors()>& encode,
                                      bool* hit) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = memory_.find(key); it != memory_.end()) {
      ++hits_;
      if (hit) *hit = true;
      return it->second;
    }
  }
  const std::string path = dir_.empty() ? "" : file_for(key);
  std::error_code ec;
  if (!path.empty() && std::filesystem::exists(path, ec)) {
    try {
      const formats::Checkpoint file(path);
      const auto& meta = file.safetensors_metadata();
      if (auto it = meta.find(kKeyMetadata); it != meta.end() && it->second == key) {
        runtime::HostTensors tensors = models::read_host_tensors(path);
        std::lock_guard lock(mutex_);
        ++hits_;
        if (hit) *hit = true;
        return remember(key, std::move(tensors));
      }
    } catch (const Error& e) {
      spdlog::warn("prompt cache: {} is unusable, encoding again ({})", path, e.what());
    }
  }
  runtime::HostTensors tensors = encode();
  if (!path.empty()) {
    try {
      std::filesystem::create_directories(dir_);
      std::vector<std::pair<std::string, const HostTensor*>> list;
      for (const auto& [name, t] : tensors) list.emplace_back(name, &t);
      models::write_host_tensors(path, list, {{kKeyMetadata, key}});
    } catch (const std::exception& e) {
      spdlog::warn("prompt cache: cannot keep an encoding in {}: {}", dir_, e.what());
    }
  }
  std::lock_guard lock(mutex_);
  ++encodings_;
  if (hit) *hit = false;
  return remember(key, std::move(tensors));
}

}  // namespace ditrun::launcher
