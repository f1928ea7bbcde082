#include "launcher/text_encoders.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "launcher/models_dir.h"
#include "models/pipeline/model_cost.h"
#include "models/pipeline/model_source.h"
#include "models/text/text_encoder_cost.h"
#include "runtime/core/error.h"
#include "runtime/core/units.h"

namespace ditrun::launcher {
namespace text = models::text;
namespace {

// What a family's prompts need: T5 + CLIP for Flux, umT5 for Wan, T5 + CLIP-L + CLIP-G for
// SD3.5 (the two CLIPs told apart by width: the released 768 and 1280).
struct Wanted {
  std::string architecture;
  int64_t width = 0;
  std::string option;
};

constexpr int64_t kClipGWidth = 1280;

std::vector<Wanted> wanted_encoders(const arch::ModelConfig& model) {
  if (model.family == arch::Family::Flux) {
    const arch::FluxParams& p = arch::flux_params(model);
    return {{"clip-text", p.vec_in_dim, "--clip"}, {"t5", p.context_in_dim, "--t5"}};
  }
  if (model.family == arch::Family::Wan) return {{"umt5", arch::wan_params(model).text_dim, "--text-encoder"}};
  if (model.family == arch::Family::SD3) {
    const arch::SD3Params& p = arch::sd3_params(model);
    return {{"clip-text", p.adm_in_channels - kClipGWidth, "--clip"},
            {"clip-text", kClipGWidth, "--clip-g"},
            {"t5", p.context_in_dim, "--t5"}};
  }
  return {};
}

// The file slot an option fills.
std::optional<std::string>& slot_of(EncoderFiles& files, const std::string& option) {
  if (option == "--clip") return files.clip;
  if (option == "--clip-g") return files.clip_g;
  return files.t5;
}

// The first candidate of the architecture and width, with what else would have done.
std::optional<std::string> pick(const std::vector<std::string>& candidates, const Wanted& want, const std::string& dir) {
  std::vector<std::string> matching;
  for (const std::string& path : candidates) {
    try {
      const text::TextEncoderSource src = text::open_text_encoder(path);
      if (src.config.architecture == want.architecture && src.config.width() == want.width) matching.push_back(path);
    } catch (const Error& e) {
      spdlog::debug("--models: {} is not a text encoder this run can use: {}", path, e.what());
    }
  }
  if (matching.empty()) return std::nullopt;
  spdlog::info("--models {}: {} {} for {}{}", dir, want.option, matching.front(), want.architecture,
               matching.size() > 1 ? fmt::format(" (also found: {})", fmt::join(matching.begin() + 1, matching.end(), ", ")) : "");
  return matching.front();
}

}  // namespace

void add_text_encoder_options(CLI::App& cmd, TextEncoderOptions& o) {
  const char* group = "Prompts (jobs with 'prompt')";
  cmd.add_option("--clip", o.clip, "CLIP-L text encoder (Flux, SD3.5), e.g. clip_l.safetensors")->group(group);
  cmd.add_option("--clip-g", o.clip_g, "CLIP-G text encoder (SD3.5), e.g. clip_g.safetensors")->group(group);
  cmd.add_option("--t5", o.t5, "T5-XXL encoder (Flux, SD3.5): t5xxl_fp16/fp8 .safetensors or t5-v1_1-xxl-encoder-*.gguf")
      ->group(group);
  cmd.add_option("--text-encoder", o.text_encoder, "umT5-XXL encoder (Wan), e.g. umt5_xxl_fp8_e4m3fn_scaled.safetensors")
      ->group(group);
  cmd.add_option("--models", o.models_dir,
                 "A ComfyUI models/ folder: the model may be named by file (diffusion_models/, unet/); text encoders "
                 "and the VAE not given are found in text_encoders/, clip/ and vae/")
      ->group(group);
  cmd.add_option("--clip-tokenizer", o.clip_tokenizer, "CLIP tokenizer: a folder with vocab.json + merges.txt")->group(group);
  cmd.add_option("--t5-tokenizer", o.t5_tokenizer, "T5/umT5 tokenizer: tokenizer.json, spiece.model or their folder")
      ->group(group);
  cmd.add_option("--encoders-on", o.encoders_on, "auto (the planner's choice), gpu or cpu")
      ->check(CLI::IsMember({"auto", "gpu", "cpu"}))
      ->group(group)
      ->capture_default_str();
}

std::string missing_encoders_message(const arch::ModelConfig& model) {
  const char* options = model.family == arch::Family::Wan   ? "--text-encoder FILE"
                        : model.family == arch::Family::SD3 ? "--t5 FILE --clip FILE --clip-g FILE"
                                                            : "--t5 FILE --clip FILE";
  return fmt::format("prompt: needs the text encoders (run with {}, or --models DIR)", options);
}

EncoderFiles find_encoder_files(const TextEncoderOptions& o, const arch::ModelConfig& model) {
  EncoderFiles files;
  const bool wan = model.family == arch::Family::Wan;
  if (o.text_encoder && !wan) fail("--text-encoder is Wan's umT5, and {} is not a Wan model", model.variant);
  if ((o.t5 || o.clip) && wan) fail("--t5 and --clip are Flux's and SD3.5's; Wan takes --text-encoder (umT5)");
  if (o.clip_g && model.family != arch::Family::SD3) fail("--clip-g is SD3.5's CLIP-G; {} takes none", model.variant);
  files.clip = o.clip;
  files.clip_g = o.clip_g;
  files.t5 = wan ? o.text_encoder : o.t5;
  if (!o.models_dir) return files;
  namespace fs = std::filesystem;
  const fs::path comfy = fs::path(*o.models_dir).parent_path() / "comfy";
  files.clip_tokenizer_places = {(comfy / "sd1_tokenizer").string()};
  files.t5_tokenizer_places = {(comfy / "text_encoders" / "t5_tokenizer").string(), (comfy / "t5_tokenizer").string()};
  const std::vector<Wanted> wanted = wanted_encoders(model);
  const bool need = std::any_of(wanted.begin(), wanted.end(), [&](const Wanted& w) { return !slot_of(files, w.option); });
  if (!need) return files;
  const std::vector<std::string> candidates = files_in_models_dir(*o.models_dir, {"text_encoders", "clip"});
  for (const Wanted& w : wanted) {
    std::optional<std::string>& slot = slot_of(files, w.option);
    if (!slot) slot = pick(candidates, w, *o.models_dir);
    if (!slot)
      fail("--models {}: no {} encoder of width {} in text_encoders/ or clip/ ({} files looked at); give {} FILE",
           *o.models_dir, w.architecture, w.width, candidates.size(), w.option);
  }
  return files;
}

RunEncoders::RunEncoders(const TextEncoderOptions& o, const arch::ModelConfig& model, std::string cache_dir,
                         bool tokenizers)
    : model_(model), force_(o.encoders_on == "auto" ? "" : o.encoders_on), cache_(std::move(cache_dir)) {
  const EncoderFiles files = find_encoder_files(o, model);
  // `with_tokenizer` false: none of its own (CLIP-G runs on CLIP-L's tokens, as SD3Tokenizer).
  const auto open = [&](const std::optional<std::string>& path, const std::optional<std::string>& tokenizer,
                        const std::vector<std::string>& places, const char* option, bool with_tokenizer = true) {
    std::unique_ptr<text::TextEncoderSource> src;
    if (!path) return src;
    try {
      const auto search =
          tokenizers && with_tokenizer ? std::optional(text::TokenizerSearch{tokenizer, places}) : std::nullopt;
      src = std::make_unique<text::TextEncoderSource>(text::open_text_encoder(*path, std::nullopt, search));
    } catch (const Error& e) {
      fail("{} {}: {}", option, *path, e.what());
    }
    spdlog::info("{}: {}{}", option, src->describe(), src->tokenizer ? "; tokenizer " + src->tokenizer->describe() : "");
    return src;
  };
  const bool wan = model.family == arch::Family::Wan;
  clip_ = open(files.clip, o.clip_tokenizer, files.clip_tokenizer_places, "--clip");
  clip_g_ = open(files.clip_g, std::nullopt, {}, "--clip-g", false);
  t5_ = open(files.t5, o.t5_tokenizer, files.t5_tokenizer_places, wan ? "--text-encoder" : "--t5");
  // Checked now (architecture, width), before any job; the backends come with place().
  text::PromptConditioner::check(model, unplaced(clip_), unplaced(t5_), tokenizers, unplaced(clip_g_));
}

std::optional<text::PlacedEncoder> RunEncoders::unplaced(const std::unique_ptr<text::TextEncoderSource>& s) {
  return s ? std::optional<text::PlacedEncoder>(text::PlacedEncoder{s.get(), nullptr, false}) : std::nullopt;
}

RunEncoders::~RunEncoders() = default;

std::vector<partition::EncoderCost> RunEncoders::costs(int activation_bytes) const {
  std::vector<partition::EncoderCost> out;
  // Flux pads T5 to its full length; Wan's prompts are priced at the model's longest, SD3.5's
  // at T5's 77 (CLIP-G beside CLIP-L at 77).
  if (t5_) out.push_back(text::text_encoder_cost(*t5_, text::t5_tokens(model_), activation_bytes, t5_->config.architecture));
  if (clip_) out.push_back(text::text_encoder_cost(*clip_, clip_->config.clip.max_positions, activation_bytes, "clip"));
  if (clip_g_)
    out.push_back(text::text_encoder_cost(*clip_g_, clip_g_->config.clip.max_positions, activation_bytes, "clip-g"));
  return out;
}

std::vector<partition::EncoderPlacement> RunEncoders::placements_for(const partition::Plan& plan,
                                                                     const partition::DeviceInventory& inventory,
                                                                     uint64_t reserved) const {
  const partition::DeviceSpec* rank0 = plan.ranks.empty() ? nullptr : inventory.find(plan.ranks.front().device);
  const bool gpu = rank0 && rank0->kind == partition::HardwareKind::gpu;
  return partition::place_encoders(costs(gpu ? models::kGpuActivationBytes : models::kCpuActivationBytes), plan, inventory,
                                   force_, reserved);
}

void RunEncoders::place(const partition::Plan& plan, const partition::DeviceInventory& inventory,
                        const BackendOptions& backend, uint64_t reserved) {
  placements_ = placements_for(plan, inventory, reserved);
  // placements_ follow costs(): T5 (or umT5), then CLIP, then CLIP-G.
  std::optional<text::PlacedEncoder> t5, clip, clip_g;
  runtime::Backend *cpu_backend = nullptr, *gpu_backend = nullptr;
  size_t next = 0;
  using Slot = std::pair<text::TextEncoderSource*, std::optional<text::PlacedEncoder>*>;
  for (const auto& [src, slot] : {Slot{t5_.get(), &t5}, Slot{clip_.get(), &clip}, Slot{clip_g_.get(), &clip_g}}) {
    if (!src) continue;
    const partition::EncoderPlacement& p = placements_[next++];
    // One backend per device: the encoders run one after the other.
    const bool cpu = p.where == partition::EncoderWhere::cpu;
    runtime::Backend*& on = cpu ? cpu_backend : gpu_backend;
    if (!on) {
      BackendOptions options = backend;
      options.device_memory.clear();  // the DiT's budget is not the encoder's
      if (cpu) {
        options.backend = "cpu";
        options.precision = "auto";
      } else {
        // The room the plan kept: the DiT's arena holds its own budget.
        options.device_memory = std::to_string(reserved);
      }
      backends_.push_back(make_backend(options));
      on = backends_.back().get();
    }
    spdlog::info("text encoder {}: {} on {}; {}", p.encoder, partition::to_string(p.where), p.device, p.why);
    *slot = text::PlacedEncoder{src, on, p.where == partition::EncoderWhere::streamed};
  }
  conditioner_ = std::make_unique<text::PromptConditioner>(model_, clip, t5, clip_g);
}

void RunEncoders::place_on(const BackendOptions& backend) {
  backends_.push_back(make_backend(backend));
  const auto on = [&](const std::unique_ptr<text::TextEncoderSource>& s) {
    return s ? std::optional<text::PlacedEncoder>(text::PlacedEncoder{s.get(), backends_.back().get(), false})
             : std::nullopt;
  };
  conditioner_ = std::make_unique<text::PromptConditioner>(model_, on(clip_), on(t5_), on(clip_g_));
}

runtime::HostTensors RunEncoders::conditioning(const std::string& job, const std::string& prompt,
                                               const std::optional<std::string>& negative) {
  if (!conditioner_) fail("the text encoders are not placed yet");
  const std::string key = fmt::format("{}\n{}\n{}", conditioner_->identity(), prompt, negative ? "-" + *negative : "");
  return cache_.get(key, [&] {
    std::vector<text::PromptTokens> tokens;
    runtime::HostTensors tensors = conditioner_->encode(prompt, negative, &tokens);
    for (const text::PromptTokens& t : tokens)
      if (t.truncated())
        spdlog::warn("job '{}': {} has {} {} tokens, the model takes {}: the rest is cut off", job, t.field, t.tokens,
                     t.encoder, t.limit);
    return tensors;
  });
}

std::string RunEncoders::describe() const {
  std::vector<std::string> parts;
  if (t5_) parts.push_back(t5_->path);
  if (clip_) parts.push_back(clip_->path);
  if (clip_g_) parts.push_back(clip_g_->path);
  return fmt::format("{}", fmt::join(parts, " + "));
}

PlanWithEncoders plan_with_encoders(const RunEncoders& encoders, const std::function<ModelPlan(uint64_t)>& plan_for) {
  std::optional<PlanWithEncoders> best;
  double best_seconds = 0;
  std::vector<std::string> tried;
  std::optional<Error> first_error;
  const auto job_seconds = [](const ModelPlan& p) {
    return p.plan.predicted.job_seconds.value_or(p.plan.predicted.step_seconds);
  };
  const auto consider = [&](uint64_t reserve, const char* what) {
    PlanWithEncoders c;
    try {
      c.planned = plan_for(reserve);
    } catch (const Error& e) {
      if (!first_error) first_error = e;
      tried.push_back(fmt::format("{}: cannot be planned", what));
      return;
    }
    c.reserved_bytes = reserve;
    c.planned.plan.encoder_bytes = reserve;
    c.placements = encoders.placements_for(c.planned.plan, c.planned.inventory, reserve);
    double seconds = job_seconds(c.planned);
    for (const auto& p : c.placements) seconds += p.seconds_per_job;
    tried.push_back(fmt::format("{} {}", what, format_seconds(seconds)));
    if (!best || seconds < best_seconds) best = std::move(c), best_seconds = seconds;
  };
  consider(0, "no room kept (encoders on the CPU)");
  const partition::DeviceSpec* rank0 =
      best && !best->planned.plan.ranks.empty() ? best->planned.inventory.find(best->planned.plan.ranks.front().device) : nullptr;
  if (!encoders.forced_to_cpu() && rank0 && rank0->kind == partition::HardwareKind::gpu) {
    uint64_t streamed = 0, resident = 0;
    for (const partition::EncoderCost& e : encoders.costs(models::kGpuActivationBytes)) {
      streamed += 2 * e.largest_layer_bytes() + e.activation_bytes;
      resident += e.weight_bytes() + e.activation_bytes;
    }
    consider(streamed, "room for them streamed");
    consider(resident, "room for them resident");
  }
  if (!best) throw *first_error;
  best->why = fmt::format("predicted job: {}", fmt::join(tried, "; "));
  return std::move(*best);
}

}  // namespace ditrun::launcher
