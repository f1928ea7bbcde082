#include "models/pipeline/model_files.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "models/pipeline/network.h"
#include "runtime/core/error.h"
#include "runtime/exec/expert_pair.h"

namespace ditrun::models {
namespace {

namespace fs = std::filesystem;

// Two experts must be one architecture: the same config and every tensor of the same shape.
void check_same_architecture(const ModelSource& high, const ModelSource& low) {
  const std::string& hp = high.checkpoint->path();
  const std::string& lp = low.checkpoint->path();
  const nlohmann::json a = high.config.to_json().at("params"), b = low.config.to_json().at("params");
  for (const auto& [key, value] : a.items())
    if (!b.contains(key) || b.at(key) != value)
      fail("experts {} and {} differ: params.{} is {} in the first, {} in the second (the two experts of a model "
           "share one architecture)",
           hp, lp, key, value.dump(), b.contains(key) ? b.at(key).dump() : "absent");
  if (high.config.family != low.config.family)
    fail("experts {} and {} differ: {} and {} models", hp, lp, arch::family_name(high.config.family),
         arch::family_name(low.config.family));
  for (const auto& w : high.weights->weights()) {
    const quant::Weight* other = low.weights->find(w.name);
    if (other && other->shape != w.shape)
      fail("experts {} and {} differ: tensor '{}' is {} in the first, {} in the second", hp, lp, w.name,
           shape_string(w.shape), shape_string(other->shape));
  }
}

// The release's boundary when the config has none (a custom variant): image-to-video experts
// take 36 input channels.
void settle_expert_defaults(arch::ModelConfig& config) {
  if (config.sampling.boundary > 0) return;
  const auto* wan = std::get_if<arch::WanParams>(&config.params);
  const bool i2v = wan && wan->in_dim != wan->out_dim;
  config.sampling.boundary = i2v ? 0.900 : 0.875;
  config.sampling.cfg_low = config.sampling.cfg;
  spdlog::info("{}: two experts, switching at the {} release's boundary {} (t >= {})", config.variant,
               i2v ? "I2V-A14B" : "T2V-A14B", config.sampling.boundary, config.sampling.boundary * 1000);
}

}  // namespace

std::optional<std::string> sidecar_low_noise(const nlohmann::json& j, const std::string& sidecar_path,
                                             const std::string& model_path) {
  const auto experts = j.find("experts");
  if (experts == j.end()) return std::nullopt;
  if (!experts->is_object()) fail("{}: experts: expected an object, got {}", sidecar_path, experts->dump());
  const fs::path dir = fs::path(sidecar_path).parent_path();
  const auto file = [&](const char* key) -> std::optional<std::string> {
    const auto it = experts->find(key);
    if (it == experts->end()) return std::nullopt;
    if (!it->is_string() || it->get<std::string>().empty())
      fail("{}: experts.{}: expected a file name, got {}", sidecar_path, key, it->dump());
    const fs::path p(it->get<std::string>());
    return (p.is_absolute() ? p : dir / p).string();
  };
  for (const auto& [key, value] : experts->items())
    if (key != "high_noise_model" && key != "low_noise_model")
      spdlog::warn("{}: experts.{}: ditrun does not use it (ignored)", sidecar_path, key);
  const std::optional<std::string> low = file("low_noise_model");
  std::error_code ec;
  if (low && fs::equivalent(*low, model_path, ec))
    fail("{}: {} is the config's low-noise expert; run the high-noise one ({}), the low-noise one follows", sidecar_path,
         model_path, file("high_noise_model").value_or("experts.high_noise_model"));
  return low;
}

FindStoredWeight expert_pair_weights(FindStoredWeight high, FindStoredWeight low) {
  return [high = std::move(high), low = std::move(low)](const std::string& name) -> std::optional<StoredWeight> {
    const auto split = runtime::split_expert_weight_name(name);
    if (!split) return std::nullopt;
    return split->expert == runtime::Expert::high_noise ? high(split->name) : low(split->name);
  };
}

OpenedModel open_model_files(const ModelFiles& files) {
  OpenedModel m;
  m.source = open_model(files.path, files.config);
  // The sidecar, read once here for the experts and the low-noise expert's architecture.
  const std::optional<nlohmann::json> sidecar =
      files.config ? std::optional<nlohmann::json>(read_json_file(*files.config)) : std::nullopt;
  std::optional<std::string> low = files.low_noise;
  if (!low && sidecar) low = sidecar_low_noise(*sidecar, *files.config, files.path);
  {
    // Each expert's weights against its own network, before they become a pair.
    const auto expert = make_network(m.source.config);
    check_weights_present(*expert, *m.source.weights);
  }
  if (low) {
    // The sidecar's architecture applies to both experts; its sampling (read once, with the
    // high-noise expert) is the model's.
    m.low_noise = open_model(*low, std::nullopt);
    if (sidecar) {
      nlohmann::json architecture = *sidecar;
      if (architecture.is_object()) architecture.erase("sampling");
      m.low_noise->config = arch::apply_sidecar(m.low_noise->config, architecture, *files.config);
      m.low_noise->config_source = "sidecar " + *files.config;
    }
    check_same_architecture(m.source, *m.low_noise);
    check_weights_present(*make_network(m.low_noise->config), *m.low_noise->weights);
    m.source.config.experts = 2;
    settle_expert_defaults(m.source.config);
  } else if (m.source.config.sampling.boundary > 0) {
    spdlog::warn("{} is one expert of {}, a model of two: every step runs it (give the other with --low-noise FILE)",
                 files.path, m.source.config.variant);
  }
  m.network = make_network(m.source.config);
  return m;
}

runtime::WeightStore::FindSource OpenedModel::find_weight() const {
  const quant::WeightSet* high = source.weights.get();
  if (!low_noise) return [high](const std::string& name) -> const Weight* { return high->find(name); };
  const quant::WeightSet* low = low_noise->weights.get();
  return [high, low](const std::string& name) -> const Weight* {
    const auto split = runtime::split_expert_weight_name(name);
    if (!split) return nullptr;
    return (split->expert == runtime::Expert::high_noise ? high : low)->find(split->name);
  };
}

FindStoredWeight OpenedModel::stored_weights() const {
  if (!low_noise) return checkpoint_weights(*source.weights);
  return expert_pair_weights(checkpoint_weights(*source.weights), checkpoint_weights(*low_noise->weights));
}

std::string OpenedModel::describe() const {
  if (!low_noise) return fmt::format("{} ({})", source.checkpoint->path(), source.config.variant);
  return fmt::format("{} with low-noise expert {} ({})", source.checkpoint->path(), low_noise->checkpoint->path(),
                     source.config.variant);
}

}  // namespace ditrun::models
