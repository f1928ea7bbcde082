#include "launcher/models_dir.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "launcher/picture_output.h"
#include "models/vae/vae_source.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {

std::vector<std::string> files_in_models_dir(const std::string& dir, std::initializer_list<const char*> subfolders) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  for (const char* sub : subfolders) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(fs::path(dir) / sub, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string ext = it->path().extension().string();
      if (it->is_regular_file() && (ext == ".safetensors" || ext == ".gguf")) out.push_back(it->path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string resolve_model_path(const std::string& model, const std::optional<std::string>& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!dir || fs::exists(model, ec)) return model;
  for (const char* sub : {"diffusion_models", "unet"}) {
    const fs::path candidate = fs::path(*dir) / sub / model;
    if (fs::exists(candidate, ec)) {
      spdlog::info("--models {}: model {}", *dir, candidate.string());
      return candidate.string();
    }
  }
  fail("{}: no such file, nor in {}/diffusion_models or {}/unet", model, *dir, *dir);
}

std::optional<std::string> find_vae_in_models_dir(const std::string& dir, const arch::ModelConfig& model) {
  for (const std::string& path : files_in_models_dir(dir, {"vae"})) {
    try {
      const models::vae::VaeSource vae = models::vae::open_vae(path, std::nullopt);
      if (!vae_mismatch(vae.config, model)) {
        spdlog::info("--models {}: VAE {} ({})", dir, path, vae.config.name());
        return path;
      }
    } catch (const Error& e) {
      spdlog::debug("--models: {} is not a VAE this run can use: {}", path, e.what());
    }
  }
  return std::nullopt;
}

}  // namespace ditrun::launcher
