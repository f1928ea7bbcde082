// Prompts to a DiT family's conditioning tensors, the same tensors a job's `cond` file holds:
//   Flux  T5 (v1.1 XXL) over the prompt padded to 512 tokens (dev) or 256 (schnell), run
//         without a mask as BFL's code does → `txt` [L, 4096]; CLIP-L's pooled output (the
//         final norm's row at the end-of-text token) → `y` [768].
//   Wan   umT5 over the prompt (cleaned as Wan's tokenizer does: text_cleaning.h), masked,
//         the output trimmed to the prompt's length (</s>
//         included) → `context`; the negative prompt the same way → `context_neg`.
//         Masked keys contribute nothing and T5's position bias depends only on i − j, so the
//         trimmed rows equal those of the unmasked run over the real tokens alone, which is
//         what runs here (a short prompt costs its own length, not 512).
//   SD3.5 as Stability's sd3_infer builds it: CLIP-L and CLIP-G over the same CLIP tokens
//         (start, the first 75 tokens, end; CLIP-L pads with end-of-text, CLIP-G with 0), each
//         its second-to-last layer without the final norm, side by side and zero-padded to
//         T5's width: 77 rows; then T5 over the prompt's first 226 characters, padded with
//         <pad> to at least 77 tokens and never cut, run without a mask → `context`
//         [77 + max(77, T5 tokens), 4096]; CLIP-L's pooled row (not projected) ‖ CLIP-G's
//         projected one → `y` [2048]. The negative prompt (default: empty) the same way →
//         `context_neg`, `y_neg`, its T5 part padded to the prompt's length when that is longer
//         (the two run as one batch; sd3_impls cannot batch two lengths at all).
// Prompts longer than the model's length are cut to it (the end token kept), with a warning.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "models/arch/model_config.h"
#include "models/text/clip_text_encoder.h"
#include "models/text/t5_encoder.h"
#include "models/text/text_encoder_source.h"
#include "runtime/backend/backend.h"
#include "runtime/exec/model.h"

namespace ditrun::models::text {

// An encoder and where it runs (not owned).
struct PlacedEncoder {
  const TextEncoderSource* source = nullptr;
  runtime::Backend* backend = nullptr;
  bool streamed = false;  // one layer's weights on the backend at a time
};

// The official default negative prompt of the model's release (Wan 2.1 / 2.2's
// `sample_neg_prompt`); empty for families without one (SD3.5's is the empty prompt).
std::string default_negative_prompt(const arch::ModelConfig& model);
// Whether a guided job's prompt comes with a negative prompt (Wan, SD3.5: classifier-free
// guidance over prompts; Flux has embedded guidance).
bool takes_negative_prompt(const arch::ModelConfig& model);

// The T5/umT5 length of a prompt: Flux pads to 512 (dev) or 256 (schnell); Wan's is at most
// text_len; SD3.5's at least 77.
int64_t t5_tokens(const arch::ModelConfig& model);

// Token counts of an encoding, for the ledger and warnings.
struct PromptTokens {
  std::string field;  // "prompt", "negative_prompt"
  std::string encoder;
  int64_t tokens = 0, limit = 0;  // before cutting; the model's length
  bool truncated() const { return tokens > limit; }
};

class PromptConditioner {
 public:
  // `clip` (CLIP-L) for Flux and SD3.5, `clip_g` for SD3.5; `t5` is T5 (Flux, SD3.5) or umT5
  // (Wan). Fails with one line naming the option (`--t5`, `--clip`, `--clip-g`,
  // `--text-encoder`) when an encoder is missing, is of the wrong architecture, or its width
  // is not the model's context (or pooled) width.
  PromptConditioner(const arch::ModelConfig& model, std::optional<PlacedEncoder> clip, std::optional<PlacedEncoder> t5,
                    std::optional<PlacedEncoder> clip_g = std::nullopt);
  // The constructor's checks alone (backends not needed yet; tokenizers when `tokenizers`).
  static void check(const arch::ModelConfig& model, const std::optional<PlacedEncoder>& clip,
                    const std::optional<PlacedEncoder>& t5, bool tokenizers = true,
                    const std::optional<PlacedEncoder>& clip_g = std::nullopt);

  // `negative` only for guided (cfg ≠ 1) Wan and SD3.5 jobs. Thread-safe (one encoding at a time).
  runtime::HostTensors encode(const std::string& prompt, const std::optional<std::string>& negative,
                              std::vector<PromptTokens>* tokens = nullptr);

  // What decides the tensors besides the prompts: the model's variant and the encoders (by
  // content and tokenizer, not path). Part of the prompt cache's key.
  const std::string& identity() const { return identity_; }
  bool takes_negative() const { return takes_negative_prompt(model_); }

 private:
  HostTensor run_t5(const std::string& text, const std::string& field, std::vector<PromptTokens>* tokens);
  // SD3.5's context and pooled vectors: {"context", "y"}, and with a negative prompt
  // {"context_neg", "y_neg"} of the same length (the shorter T5 part padded further).
  void encode_sd3(const std::string& prompt, const std::optional<std::string>& negative, runtime::HostTensors& out,
                  std::vector<PromptTokens>* tokens);

  arch::ModelConfig model_;
  std::optional<PlacedEncoder> clip_, t5_, clip_g_;
  std::unique_ptr<ClipTextEncoder> clip_encoder_, clip_g_encoder_;
  std::unique_ptr<T5Encoder> t5_encoder_;
  std::string identity_;
  std::mutex mutex_;
};

}  // namespace ditrun::models::text
