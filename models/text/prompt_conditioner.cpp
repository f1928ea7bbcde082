#include "models/text/prompt_conditioner.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "models/text/sd3_conditioning.h"
#include "models/text/text_cleaning.h"
#include "models/text/wan_negative_prompt.h"
#include "runtime/core/error.h"

namespace ditrun::models::text {
namespace {

// An encoder by content, not path (the built-in model's files move between runs): the size
// and 16 samples of 4 KiB spread over the file (the first holds the header), hashed; and its
// tokenizer, when it has one (CLIP-G runs on CLIP-L's), by the ids of a probe text.
std::string encoder_identity(const TextEncoderSource& e) {
  uint64_t h = 0xCBF29CE484222325ull;
  const auto mix = [&](const void* data, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(data)[i]) * 0x100000001B3ull;
  };
  std::ifstream in(e.path, std::ios::binary);
  const uint64_t size = std::filesystem::file_size(e.path);
  mix(&size, sizeof size);
  std::vector<char> sample(4096);
  for (uint64_t k = 0; k < 16; ++k) {
    in.seekg(std::streamoff(size > sample.size() ? (size - sample.size()) / 15 * k : 0));
    in.read(sample.data(), std::streamsize(sample.size()));
    mix(sample.data(), size_t(in.gcount()));
    in.clear();
  }
  if (e.tokenizer) {
    const std::vector<int64_t> probe = e.tokenizer->encode("The quick brown fox, 2 cats & 日本語: ünïcödé!");
    mix(probe.data(), probe.size() * sizeof(int64_t));
  }
  return fmt::format("{}:{:016x}", e.config.architecture, h);
}

// The option that gives an encoder, for errors.
std::string option_of(const arch::ModelConfig& model, bool clip) {
  if (clip) return "--clip";
  return model.family == arch::Family::Wan ? "--text-encoder" : "--t5";
}

void check_encoder(const arch::ModelConfig& model, const std::optional<PlacedEncoder>& e, bool clip,
                   const std::string& want_architecture, int64_t want_width, const std::string& width_name,
                   bool tokenizer) {
  const std::string option = option_of(model, clip);
  if (!e || !e->source)
    fail("{}: {} models need a {} encoder for prompts ({} FILE, or --models DIR)", option,
         arch::family_name(model.family), want_architecture, option);
  const TextEncoderConfig& c = e->source->config;
  if (c.architecture != want_architecture)
    fail("{} {}: a {} encoder, but {} takes {}", option, e->source->path, c.architecture, model.variant,
         want_architecture);
  if (c.width() != want_width)
    fail("{} {}: output width {}, but {}'s {} is {}", option, e->source->path, c.width(), model.variant, width_name,
         want_width);
  if (tokenizer && !e->source->tokenizer) fail("{} {}: no tokenizer", option, e->source->path);
}

}  // namespace

int64_t t5_tokens(const arch::ModelConfig& model) {
  if (model.family == arch::Family::Flux) return arch::flux_params(model).guidance_embed ? 512 : 256;
  if (model.family == arch::Family::SD3) return kSD3T5MinTokens;  // a prompt's at least; longer ones grow
  return arch::wan_params(model).text_len;
}

std::string default_negative_prompt(const arch::ModelConfig& model) {
  return model.family == arch::Family::Wan ? std::string(kWanDefaultNegativePrompt) : std::string();
}

bool takes_negative_prompt(const arch::ModelConfig& model) {
  return model.family == arch::Family::Wan || model.family == arch::Family::SD3;
}

void PromptConditioner::check(const arch::ModelConfig& model, const std::optional<PlacedEncoder>& clip,
                              const std::optional<PlacedEncoder>& t5, bool tokenizers,
                              const std::optional<PlacedEncoder>& clip_g) {
  if (clip_g && model.family != arch::Family::SD3) fail("--clip-g: only SD3.5 takes CLIP-G");
  if (model.family == arch::Family::SD3) {
    const arch::SD3Params& p = arch::sd3_params(model);
    check_encoder(model, t5, false, "t5", p.context_in_dim, "context width (context_in_dim)", tokenizers);
    if (!clip || !clip->source || !clip_g || !clip_g->source)
      fail("{}: SD3.5 prompts need CLIP-L (--clip FILE) and CLIP-G (--clip-g FILE), or --models DIR", !clip ? "--clip" : "--clip-g");
    for (const auto& [e, option] : {std::pair{&clip, "--clip"}, std::pair{&clip_g, "--clip-g"}}) {
      if ((*e)->source->config.architecture != "clip-text")
        fail("{} {}: a {} encoder, but SD3.5 takes a CLIP text encoder", option, (*e)->source->path,
             (*e)->source->config.architecture);
      if (tokenizers && option == std::string("--clip") && !(*e)->source->tokenizer)
        fail("{} {}: no tokenizer", option, (*e)->source->path);
    }
    const int64_t l = clip->source->config.width(), g = clip_g->source->config.width();
    if (l + g != p.adm_in_channels || l + g > p.context_in_dim)
      fail("--clip {} and --clip-g {}: widths {} + {}, but {}'s pooled vector is {} wide (adm_in_channels; CLIP-L 768 + "
           "CLIP-G 1280)",
           clip->source->path, clip_g->source->path, l, g, model.variant, p.adm_in_channels);
    return;
  }
  if (model.family == arch::Family::Flux) {
    const arch::FluxParams& p = arch::flux_params(model);
    check_encoder(model, clip, true, "clip-text", p.vec_in_dim, "pooled vector (vec_in_dim)", tokenizers);
    check_encoder(model, t5, false, "t5", p.context_in_dim, "context width (context_in_dim)", tokenizers);
  } else if (model.family == arch::Family::Wan) {
    if (clip) fail("--clip: Wan models take no CLIP text encoder (umT5 only: --text-encoder)");
    check_encoder(model, t5, false, "umt5", arch::wan_params(model).text_dim, "text width (text_dim)", tokenizers);
  } else {
    fail("{}: prompts need the {} text encoders, which ditrun does not run yet (give the job a 'cond' file)",
         model.variant, arch::family_name(model.family));
  }
}

PromptConditioner::PromptConditioner(const arch::ModelConfig& model, std::optional<PlacedEncoder> clip,
                                     std::optional<PlacedEncoder> t5, std::optional<PlacedEncoder> clip_g)
    : model_(model), clip_(clip), t5_(t5), clip_g_(clip_g) {
  check(model, clip, t5, true, clip_g);
  identity_ = fmt::format("{}|{}", model.variant, encoder_identity(*t5->source));
  t5_encoder_ = std::make_unique<T5Encoder>(t5->source->config.t5, *t5->backend, *t5->source->weights, t5->source->path);
  t5_encoder_->set_streamed(t5->streamed);
  const auto open_clip = [&](const PlacedEncoder& e) {
    identity_ += "|" + encoder_identity(*e.source);
    auto encoder =
        std::make_unique<ClipTextEncoder>(e.source->config.clip, *e.backend, *e.source->weights, e.source->path);
    encoder->set_streamed(e.streamed);
    return encoder;
  };
  if (clip) clip_encoder_ = open_clip(*clip);
  if (clip_g) clip_g_encoder_ = open_clip(*clip_g);
}

HostTensor PromptConditioner::run_t5(const std::string& text, const std::string& field, std::vector<PromptTokens>* tokens) {
  const Tokenizer& tokenizer = *t5_->source->tokenizer;
  const bool flux = model_.family == arch::Family::Flux;
  // Wan's tokenizer cleans the text first (clean='whitespace'); BFL's Flux code does not.
  const std::vector<int64_t> ids = tokenizer.encode(flux ? text : clean_prompt(text));
  const int64_t limit = t5_tokens(model_);
  if (tokens) tokens->push_back({field, t5_->source->config.architecture, int64_t(ids.size()), limit});
  if (flux) {
    // BFL's way: padded to the full length, every row consumed.
    HostTensor out = t5_encoder_->encode(ids_tensor(tokenizer.fit(ids, limit)), {});
    out.shape = {limit, out.shape[2]};
    return out;
  }
  const std::vector<int64_t> fitted = tokenizer.fit(ids, std::min<int64_t>(limit, int64_t(ids.size())));
  HostTensor out = t5_encoder_->encode(ids_tensor(fitted), {});
  out.shape = {int64_t(fitted.size()), out.shape[2]};
  return out;
}

void PromptConditioner::encode_sd3(const std::string& prompt, const std::optional<std::string>& negative,
                                   runtime::HostTensors& out, std::vector<PromptTokens>* tokens) {
  const Tokenizer& clip_tokens = *clip_->source->tokenizer;  // CLIP-L's, for CLIP-G too (SD3Tokenizer)
  const Tokenizer& t5_tokens = *t5_->source->tokenizer;
  struct Ids {
    std::string field, suffix;
    std::vector<int64_t> clip, t5;
  };
  std::vector<Ids> prompts{{"prompt", "", {}, {}}};
  if (negative) prompts.push_back({"negative_prompt", "_neg", {}, {}});
  int64_t t5_rows = kSD3T5MinTokens;
  for (Ids& p : prompts) {
    const std::string& text = p.suffix.empty() ? prompt : *negative;
    p.clip = clip_tokens.encode(text);
    p.t5 = t5_tokens.encode(sd3_t5_text(text));
    if (tokens) tokens->push_back({p.field, "clip-text", int64_t(p.clip.size()), kSD3ClipTokens});
    t5_rows = std::max<int64_t>(t5_rows, int64_t(p.t5.size()));
  }
  for (const Ids& p : prompts) {
    SD3Conditioning c =
        sd3_conditioning(*clip_encoder_, *clip_g_encoder_, *t5_encoder_, p.clip, p.t5, t5_tokens.pad_id(), t5_rows);
    out["context" + p.suffix] = std::move(c.context);
    out["y" + p.suffix] = std::move(c.y);
  }
}

runtime::HostTensors PromptConditioner::encode(const std::string& prompt, const std::optional<std::string>& negative,
                                               std::vector<PromptTokens>* tokens) {
  std::lock_guard lock(mutex_);
  runtime::HostTensors out;
  if (model_.family == arch::Family::SD3) {
    encode_sd3(prompt, negative, out, tokens);
    return out;
  }
  if (model_.family == arch::Family::Flux) {
    if (negative) fail("negative_prompt: Flux models take embedded guidance, not a negative prompt");
    out["txt"] = run_t5(prompt, "prompt", tokens);
    const Tokenizer& tokenizer = *clip_->source->tokenizer;
    const std::vector<int64_t> ids = tokenizer.encode(prompt);
    const int64_t limit = clip_->source->config.clip.max_positions;
    if (tokens) tokens->push_back({"prompt", "clip-text", int64_t(ids.size()), limit});
    ClipTextOutputs clip = clip_encoder_->encode(ids_tensor(tokenizer.fit(ids, limit)));
    clip.pooled.shape = {clip.pooled.shape[1]};
    out["y"] = std::move(clip.pooled);
    return out;
  }
  out["context"] = run_t5(prompt, "prompt", tokens);
  if (negative) out["context_neg"] = run_t5(*negative, "negative_prompt", tokens);
  return out;
}

}  // namespace ditrun::models::text
