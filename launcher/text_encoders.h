// The text encoders of a run (`run`, `serve`, `encode`, `plan`): which files (--clip, --t5,
// --text-encoder, or found under --models DIR), opened with their tokenizers, placed by the
// planner (partition/encoder_placement.h) and used to turn a job's prompts into its
// conditioning, through the prompt cache.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launcher/backend_options.h"
#include "launcher/planning.h"
#include "launcher/prompt_cache.h"
#include "models/arch/model_config.h"
#include "models/text/prompt_conditioner.h"
#include "partition/encoder_placement.h"

namespace ditrun::launcher {

struct TextEncoderOptions {
  std::optional<std::string> clip, clip_g, t5, text_encoder, models_dir;
  std::optional<std::string> clip_tokenizer, t5_tokenizer;
  std::string encoders_on = "auto";  // auto | gpu | cpu
  bool given() const { return clip || clip_g || t5 || text_encoder || models_dir; }
};
void add_text_encoder_options(CLI::App& cmd, TextEncoderOptions& options);
// What a job with a prompt is told when the run has no text encoders for `model`.
std::string missing_encoders_message(const arch::ModelConfig& model);

// The encoder files a model family needs: those given, the rest found under --models DIR
// (ComfyUI's `text_encoders/` and `clip/`, by architecture and width; the choice is logged).
// `tokenizer_places`: ComfyUI's own tokenizer folders beside a `models/` tree.
struct EncoderFiles {
  std::optional<std::string> clip, clip_g, t5;  // t5: T5 (Flux, SD3.5) or umT5 (Wan); clip_g: SD3.5's
  std::vector<std::string> clip_tokenizer_places, t5_tokenizer_places;
};
EncoderFiles find_encoder_files(const TextEncoderOptions& options, const arch::ModelConfig& model);

class RunEncoders {
 public:
  // Opens the encoders `options` name for `model`, with their tokenizers, and checks them
  // against the model (architecture, width). `cache_dir`: the prompt cache's folder ("" =
  // memory only). `tokenizers` false: planning only, no tokenizer needed. Fails with one
  // line naming the option and file.
  RunEncoders(const TextEncoderOptions& options, const arch::ModelConfig& model, std::string cache_dir,
              bool tokenizers = true);
  ~RunEncoders();

  // The planner's view of each encoder for one job on `activation_bytes`-wide activations.
  std::vector<partition::EncoderCost> costs(int activation_bytes) const;
  // Where the planner puts the encoders against rank 0 of the DiT's plan (what place() does);
  // `reserved`: the room that plan kept for them on rank 0's GPU.
  std::vector<partition::EncoderPlacement> placements_for(const partition::Plan& plan,
                                                          const partition::DeviceInventory& inventory,
                                                          uint64_t reserved = 0) const;
  // Places the encoders against rank 0 of the DiT's plan and opens their backends
  // (`backend`: the run's options; a GPU placement uses its device). Logs the choice.
  void place(const partition::Plan& plan, const partition::DeviceInventory& inventory, const BackendOptions& backend,
             uint64_t reserved = 0);
  bool forced_to_cpu() const { return force_ == "cpu"; }
  const std::vector<partition::EncoderPlacement>& placements() const { return placements_; }
  // Without a plan (`ditrun encode`): every encoder resident on one backend of `backend`.
  void place_on(const BackendOptions& backend);

  // The conditioning of a job's prompts (cached). `job` names the job in warnings (a prompt
  // cut to the model's length). `negative`: Wan's and SD3.5's guided jobs only (default: the
  // release's).
  runtime::HostTensors conditioning(const std::string& job, const std::string& prompt,
                                    const std::optional<std::string>& negative);
  std::string describe() const;  // the encoders, for the ledger and pictures
  const PromptCache& cache() const { return cache_; }

 private:
  arch::ModelConfig model_;
  std::string force_;  // --encoders-on: "" (the planner's choice), "gpu" or "cpu"
  static std::optional<models::text::PlacedEncoder> unplaced(const std::unique_ptr<models::text::TextEncoderSource>& s);

  std::unique_ptr<models::text::TextEncoderSource> clip_, clip_g_, t5_;
  std::vector<partition::EncoderPlacement> placements_;
  std::vector<std::unique_ptr<runtime::Backend>> backends_;
  std::unique_ptr<models::text::PromptConditioner> conditioner_;
  PromptCache cache_;
};

// The DiT's plan and the encoders' places decided together. `plan_for(bytes)` plans the DiT
// with `bytes` kept off rank 0's GPU budget. Tried: nothing kept (the encoders on the CPU),
// room for the encoders streamed, room for them resident. The one with the shortest
// predicted job (the DiT's steps plus the encodings) wins: a GPU that streams DiT blocks with
// their copies hidden can spare an encoder's two layers at little cost per step, and save
// seconds per job over the CPU. Candidates that cannot be planned are left out.
struct PlanWithEncoders {
  ModelPlan planned;
  std::vector<partition::EncoderPlacement> placements;
  uint64_t reserved_bytes = 0;  // kept for the encoders (also the plan's encoder_bytes)
  std::string why;              // the candidates' predicted jobs
};
PlanWithEncoders plan_with_encoders(const RunEncoders& encoders, const std::function<ModelPlan(uint64_t)>& plan_for);

}  // namespace ditrun::launcher
