#include "models/pipeline/denoiser.h"

#include <algorithm>
#include <cmath>

#include "models/common/model_io.h"
#include "models/common/patchify.h"
#include "models/wan/wan_blocks.h"
#include "runtime/core/error.h"
#include "runtime/exec/model_call.h"
#include "runtime/sampling/euler.h"

namespace ditrun::models {
namespace {

using runtime::HostTensors;

// One more leading dim of 1: a job's tensor as a batch of one.
HostTensor batched(const HostTensor& t) {
  Shape s = t.shape;
  s.insert(s.begin(), 1);
  return HostTensor(std::move(s), t.data);
}

// Wan 2.2's VAE (48-channel latents) strides 16 pixels, Wan 2.1's 8.
int64_t wan_latent_stride(const arch::WanParams& p) { return p.out_dim == 48 ? 16 : 8; }

// The velocity from a call's output with classifier-free guidance as one batch of two (cond,
// then uncond), or the output itself without it.
HostTensor guided_velocity(std::string_view family, const HostTensor& out, const Shape& latent, const Guidance& g) {
  const int64_t n = shape_numel(latent);
  if (out.numel() != n * (g.cfg != 1 ? 2 : 1))
    fail("{} output {} does not hold {} latent(s) of {}", family, shape_string(out.shape), g.cfg != 1 ? 2 : 1,
         shape_string(latent));
  if (g.cfg == 1) return HostTensor(latent, out.data);
  const HostTensor cond_v(latent, std::vector<float>(out.data.begin(), out.data.begin() + n));
  const HostTensor uncond_v(latent, std::vector<float>(out.data.begin() + n, out.data.end()));
  HostTensor v(latent);
  runtime::cfg_combine(cond_v, uncond_v, g.cfg, v);
  return v;
}

// `t` as a batch of `n` equal items (both CFG halves see the same image conditioning).
HostTensor repeated(const HostTensor& t, int64_t n) {
  Shape s = t.shape;
  s.insert(s.begin(), n);
  HostTensor out(std::move(s));
  for (int64_t b = 0; b < n; ++b) std::copy(t.data.begin(), t.data.end(), out.data.begin() + b * t.numel());
  return out;
}

HostTensor unbatched(HostTensor t) {
  t.shape.erase(t.shape.begin());
  return t;
}

const HostTensor& cond_tensor(const Conditioning& c, std::string_view name, const Shape& want,
                              std::string_view layout) {
  auto it = c.tensors.find(name);
  if (it == c.tensors.end()) fail("{}: conditioning tensor '{}' ({}) is missing", c.source, name, layout);
  const HostTensor& t = it->second;
  if (!shape_fits(t.shape, want)) fail("{}: conditioning tensor '{}' has shape {}, the model needs {}", c.source, name, shape_string(t.shape), layout);
  return t;
}

// The image families render one frame.
void check_single_frame(std::string_view family, int64_t frames) {
  if (frames > 1) fail("{} renders images: frames must be 1 (got {})", family, frames);
}

// An image latent [C, H, W] the network patches 2×2: H and W even and non-zero.
void check_patched_image_latent(std::string_view family, int64_t channels, const Shape& s) {
  if (s.size() != 3 || s[0] != channels || s[1] % 2 != 0 || s[2] % 2 != 0 || s[1] == 0 || s[2] == 0)
    fail("{} latent {} should be [{}, H, W] with H and W even (2x2 patches)", family, shape_string(s), channels);
}

// SD3's and Qwen-Image's latent for a size: 1/8 of the pixels in whole 2×2 patches.
Shape whole_patch_image_latent(std::string_view family, int64_t channels, int64_t width, int64_t height,
                               int64_t frames) {
  if (width <= 0 || height <= 0 || width % 16 != 0 || height % 16 != 0)
    fail("{} renders sizes that are multiples of 16 pixels (8 per latent, 2x2 latents per patch; got {}x{})", family,
         width, height);
  check_single_frame(family, frames);
  return {channels, height / 8, width / 8};
}

// Items as one batch along a new first dim, each zero-padded along its first dim to the
// longest (prompts of two lengths: the rows past an item's own are padding).
HostTensor batch_of(std::initializer_list<const HostTensor*> items) {
  Shape shape = (*items.begin())->shape;
  for (const HostTensor* t : items) shape[0] = std::max(shape[0], t->shape[0]);
  shape.insert(shape.begin(), int64_t(items.size()));
  HostTensor out(shape);
  const size_t per_item = out.data.size() / items.size();
  size_t b = 0;
  for (const HostTensor* t : items) std::copy(t->data.begin(), t->data.end(), out.data.begin() + b++ * per_item);
  return out;
}


// Flux: 16-channel latents at 1/8 of the pixels, rounded up to whole 2×2 patches (BFL
// `get_noise`: 2·ceil(H/16)); one call per step with embedded guidance on dev.
class FluxDenoiser final : public Denoiser {
 public:
  explicit FluxDenoiser(const arch::FluxParams& p) : p_(p) {}

  Shape latent_shape(int64_t width, int64_t height, int64_t frames) const override {
    if (width <= 0 || height <= 0) fail("width and height must be positive (got {}x{})", width, height);
    check_single_frame("Flux", frames);
    return {channels(), 2 * ((height + 15) / 16), 2 * ((width + 15) / 16)};
  }

  void check_latent(const Shape& s) const override { check_patched_image_latent("Flux", channels(), s); }

  void check_conditioning(const Conditioning& c, const Guidance& g) const override {
    cond_tensor(c, "txt", {-1, p_.context_in_dim}, fmt::format("[L, {}]", p_.context_in_dim));
    cond_tensor(c, "y", {p_.vec_in_dim}, fmt::format("[{}]", p_.vec_in_dim));
    if (g.cfg != 1) fail("Flux models take embedded guidance, not classifier-free guidance: cfg must be 1 (got {})", g.cfg);
  }

  int64_t image_tokens(const Shape& s) const override { return (s[1] / 2) * (s[2] / 2); }
  int calls_per_step(const Guidance&) const override { return 1; }

  HostTensors network_inputs(const HostTensor& x, double sigma, std::optional<double> /*timestep: Flux takes sigma*/, const Conditioning& c,
                             const Guidance& g) const override {
    HostTensors in;
    const HostTensor latent = batched(x);
    in["img"] = patchify_2x2(latent, PatchOrder::ChannelMajor);
    const int64_t rows = x.shape[1] / 2, cols = x.shape[2] / 2;
    HostTensor img_ids(Shape{1, rows * cols, 3});
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t col = 0; col < cols; ++col) {
        img_ids.data[size_t((r * cols + col) * 3 + 1)] = float(r);
        img_ids.data[size_t((r * cols + col) * 3 + 2)] = float(col);
      }
    in["img_ids"] = std::move(img_ids);
    const HostTensor& txt = c.tensors.at("txt");
    in["txt"] = batched(txt);
    in["txt_ids"] = HostTensor(Shape{1, txt.shape[0], 3});
    in["y"] = batched(c.tensors.at("y"));
    in["timesteps"] = HostTensor(Shape{1}, {float(sigma)});
    if (p_.guidance_embed) in["guidance"] = HostTensor(Shape{1}, {float(g.guidance)});
    return in;
  }

  HostTensor velocity_from_output(const HostTensor& out, const Shape& latent, const Guidance&) const override {
    Shape batched_latent = latent;
    batched_latent.insert(batched_latent.begin(), 1);
    return unbatched(unpatchify_2x2(out, batched_latent, PatchOrder::ChannelMajor));
  }

 private:
  int64_t channels() const { return p_.in_channels / 4; }
  arch::FluxParams p_;
};

// Wan 2.1: 16-channel latents at 1/8 of the pixels and 1/4 of the frames (plus the first);
// classifier-free guidance runs cond and uncond as one batch of two. An image-to-video model
// (in_dim > out_dim) takes the image conditioning `y` from the job's conditioning.
class WanDenoiser final : public Denoiser {
 public:
  explicit WanDenoiser(const arch::WanParams& p) : p_(p) {}

  // The VAE's 8× spatial stride (Wan 2.1's; 16× for Wan 2.2's 48-channel latents, TI2V-5B's),
  // and the 2×2 patches on top of it.
  Shape latent_shape(int64_t width, int64_t height, int64_t frames) const override {
    const int64_t stride = wan_latent_stride(p_);
    if (width <= 0 || height <= 0 || width % (2 * stride) != 0 || height % (2 * stride) != 0)
      fail("Wan renders sizes that are multiples of {} pixels (got {}x{})", 2 * stride, width, height);
    if (frames < 1 || (frames - 1) % 4 != 0) fail("Wan renders 4k+1 frames (1, 5, ..., 81); got {}", frames);
    return {p_.out_dim, 1 + (frames - 1) / 4, height / stride, width / stride};
  }

  void check_latent(const Shape& s) const override {
    if (s.size() != 4 || s[0] != p_.out_dim || s[1] == 0 || s[2] % 2 != 0 || s[3] % 2 != 0 || s[2] == 0 || s[3] == 0)
      fail("Wan latent {} should be [{}, F, H, W] with H and W even", shape_string(s), p_.out_dim);
  }

  void check_conditioning(const Conditioning& c, const Guidance& g) const override {
    const std::string layout = fmt::format("[L ≤ {}, {}]", p_.text_len, p_.text_dim);
    for (const char* name : {"context", "context_neg"}) {
      if (std::string_view(name) == "context_neg" && g.cfg == 1) continue;
      const HostTensor& t = cond_tensor(c, name, {-1, p_.text_dim}, layout);
      if (t.shape[0] > p_.text_len) fail("{}: '{}' has {} tokens, the model takes at most {}", c.source, name, t.shape[0], p_.text_len);
    }
    if (image_channels() > 0)
      cond_tensor(c, "y", {image_channels(), -1, -1, -1}, fmt::format("[{}, F, H, W] (mask and image latent)", image_channels()));
    if (takes_clip_features())
      cond_tensor(c, "clip_fea", {wan::kClipTokens, wan::kClipWidth},
                  "[257, 1280] (the image's CLIP ViT-H/14 penultimate features, as Wan 2.1's I2V code computes them)");
  }

  int64_t image_tokens(const Shape& s) const override { return s[1] * (s[2] / 2) * (s[3] / 2); }
  int calls_per_step(const Guidance& g) const override { return g.cfg == 1 ? 1 : 2; }

  HostTensors network_inputs(const HostTensor& x, double sigma, std::optional<double> timestep, const Conditioning& c,
                             const Guidance& g) const override {
    const bool cfg = g.cfg != 1;
    const int64_t B = cfg ? 2 : 1, n = x.numel();
    // Both prompts zero-padded to one length; the model pads to text_len with zeros anyway.
    const HostTensor& pos = c.tensors.at("context");
    const HostTensor* neg = cfg ? &c.tensors.at("context_neg") : nullptr;
    const int64_t L = std::max(pos.shape[0], neg ? neg->shape[0] : 0), D = p_.text_dim;
    HostTensors in;
    Shape xs = x.shape;
    xs.insert(xs.begin(), B);
    HostTensor xb(xs), context(Shape{B, L, D});
    for (int64_t b = 0; b < B; ++b) {
      std::copy(x.data.begin(), x.data.end(), xb.data.begin() + b * n);
      const HostTensor& ctx = b == 0 ? pos : *neg;
      std::copy(ctx.data.begin(), ctx.data.end(), context.data.begin() + b * L * D);
    }
    in["x"] = std::move(xb);
    in["context"] = std::move(context);
    if (image_channels() > 0) {
      // Image-to-video: both CFG halves see the same image conditioning.
      const HostTensor& y = c.tensors.at("y");
      if (!std::equal(y.shape.begin() + 1, y.shape.end(), x.shape.begin() + 1, x.shape.end()))
        fail("{}: 'y' is {}, but the latent {} needs [{}, {}, {}, {}]", c.source, shape_string(y.shape),
             shape_string(x.shape), image_channels(), x.shape[1], x.shape[2], x.shape[3]);
      in["y"] = repeated(y, B);
    }
    if (takes_clip_features()) in["clip_fea"] = repeated(c.tensors.at("clip_fea"), B);
    const float t = float(timestep.value_or(1000.0 * sigma));
    if (const auto fixed = c.tensors.find(runtime::kFixedFrames); fixed != c.tensors.end()) {
      // Wan 2.2 TI2V image-to-video: a timestep per token, 0 on the frames the job holds fixed
      // (the official mask times t), frame-major as the tokens.
      const int64_t F = x.shape[1], per_frame = (x.shape[2] / 2) * (x.shape[3] / 2), held = fixed->second.shape[1];
      HostTensor tokens(Shape{B, F * per_frame});
      for (int64_t b = 0; b < B; ++b)
        std::fill(tokens.data.begin() + b * F * per_frame + held * per_frame, tokens.data.begin() + (b + 1) * F * per_frame, t);
      in["t"] = std::move(tokens);
    } else {
      in["t"] = HostTensor(Shape{B}, std::vector<float>(size_t(B), t));
    }
    return in;
  }

  HostTensor velocity_from_output(const HostTensor& out, const Shape& latent, const Guidance& g) const override {
    return guided_velocity("Wan", out, latent, g);
  }

 private:
  // Channels of the image conditioning the input adds to the latent (Wan I2V: 20).
  int64_t image_channels() const { return p_.in_dim - p_.out_dim; }
  // Wan 2.1 I2V's image branch reads the image's CLIP features.
  bool takes_clip_features() const { return p_.model_type == "i2v"; }
  arch::WanParams p_;
};

// SD3 / SD3.5: 16-channel latents at 1/8 of the pixels in whole 2×2 patches; classifier-free
// guidance runs cond and uncond as one batch of two (each with its pooled vector `y` /
// `y_neg`), so the two contexts must have one length (the model has no text mask).
class SD3Denoiser final : public Denoiser {
 public:
  explicit SD3Denoiser(const arch::SD3Params& p) : p_(p) {}

  Shape latent_shape(int64_t width, int64_t height, int64_t frames) const override {
    return whole_patch_image_latent("SD3", p_.in_channels, width, height, frames);
  }

  void check_latent(const Shape& s) const override { check_patched_image_latent("SD3", p_.in_channels, s); }

  void check_conditioning(const Conditioning& c, const Guidance& g) const override {
    const std::string layout = fmt::format("[L, {}]", p_.context_in_dim), pooled = fmt::format("[{}]", p_.adm_in_channels);
    const HostTensor& context = cond_tensor(c, "context", {-1, p_.context_in_dim}, layout);
    cond_tensor(c, "y", {p_.adm_in_channels}, pooled);
    if (g.cfg == 1) return;
    const HostTensor& negative = cond_tensor(c, "context_neg", {-1, p_.context_in_dim}, layout);
    cond_tensor(c, "y_neg", {p_.adm_in_channels}, pooled);
    if (negative.shape[0] != context.shape[0])
      fail("{}: 'context_neg' has {} tokens and 'context' {}: SD3 runs both as one batch, without a text mask, so "
           "they need one length",
           c.source, negative.shape[0], context.shape[0]);
  }

  int64_t image_tokens(const Shape& s) const override { return (s[1] / 2) * (s[2] / 2); }
  int calls_per_step(const Guidance& g) const override { return g.cfg == 1 ? 1 : 2; }

  HostTensors network_inputs(const HostTensor& x, double sigma, std::optional<double> timestep, const Conditioning& c,
                             const Guidance& g) const override {
    const bool cfg = g.cfg != 1;
    const int64_t B = cfg ? 2 : 1;
    const auto stacked = [&](const char* cond, const char* uncond) {
      return cfg ? batch_of({&c.tensors.at(cond), &c.tensors.at(uncond)}) : batch_of({&c.tensors.at(cond)});
    };
    HostTensors in;
    in["x"] = repeated(x, B);
    in["context"] = stacked("context", "context_neg");  // one length (check_conditioning)
    in["y"] = stacked("y", "y_neg");
    in["t"] = HostTensor(Shape{B}, std::vector<float>(size_t(B), float(timestep.value_or(1000.0 * sigma))));
    return in;
  }

  HostTensor velocity_from_output(const HostTensor& out, const Shape& latent, const Guidance& g) const override {
    return guided_velocity("SD3", out, latent, g);
  }

 private:
  arch::SD3Params p_;
};

// Qwen-Image: 16-channel latents at 1/8 of the pixels in whole 2×2 patches, packed as Flux
// packs them; true classifier-free guidance (QwenImagePipeline) runs the positive and the
// negative prompt as one batch of two, the shorter zero-padded under a text mask, and
// rescales the combination per token to the positive prediction's norm.
class QwenImageDenoiser final : public Denoiser {
 public:
  explicit QwenImageDenoiser(const arch::QwenImageParams& p) : p_(p) {}

  Shape latent_shape(int64_t width, int64_t height, int64_t frames) const override {
    return whole_patch_image_latent("Qwen-Image", p_.out_channels, width, height, frames);
  }

  void check_latent(const Shape& s) const override { check_patched_image_latent("Qwen-Image", p_.out_channels, s); }

  void check_conditioning(const Conditioning& c, const Guidance& g) const override {
    const std::string layout = fmt::format("[L, {}] (joint_attention_dim)", p_.joint_attention_dim);
    cond_tensor(c, "txt", {-1, p_.joint_attention_dim}, layout);
    if (g.cfg != 1) cond_tensor(c, "txt_neg", {-1, p_.joint_attention_dim}, layout);
  }

  int64_t image_tokens(const Shape& s) const override { return (s[1] / 2) * (s[2] / 2); }
  int calls_per_step(const Guidance& g) const override { return g.cfg == 1 ? 1 : 2; }

  HostTensors network_inputs(const HostTensor& x, double sigma, std::optional<double> /*Qwen takes sigma*/,
                             const Conditioning& c, const Guidance& g) const override {
    const bool cfg = g.cfg != 1;
    const int64_t B = cfg ? 2 : 1;
    HostTensors in;
    in["img"] = patchify_2x2(repeated(x, B), PatchOrder::ChannelMajor);
    // The prompts as one batch: each its own length, the shorter zero-padded and masked.
    const HostTensor& txt = c.tensors.at("txt");
    const HostTensor* neg = cfg ? &c.tensors.at("txt_neg") : nullptr;
    in["txt"] = neg ? batch_of({&txt, neg}) : batch_of({&txt});
    if (neg && neg->shape[0] != txt.shape[0]) {
      const int64_t L = std::max(txt.shape[0], neg->shape[0]);
      HostTensor mask(Shape{2, L});
      std::fill_n(mask.data.begin(), txt.shape[0], 1.0f);
      std::fill_n(mask.data.begin() + L, neg->shape[0], 1.0f);
      in["txt_mask"] = std::move(mask);
    }
    // The pipeline's timestep: f32(σ·1000) from the scheduler, divided by 1000 for the model.
    const float t = float(float(sigma) * 1000.0f) / 1000.0f;
    in["timesteps"] = HostTensor(Shape{B}, std::vector<float>(size_t(B), t));
    HostTensor shapes(Shape{B, 3});  // (frames, rows, cols) of the token grid, per item
    for (int64_t b = 0; b < B; ++b) {
      shapes.data[size_t(b * 3)] = 1;
      shapes.data[size_t(b * 3 + 1)] = float(x.shape[1] / 2);
      shapes.data[size_t(b * 3 + 2)] = float(x.shape[2] / 2);
    }
    in["img_shapes"] = std::move(shapes);
    return in;
  }

  HostTensor velocity_from_output(const HostTensor& out, const Shape& latent, const Guidance& g) const override {
    const int64_t tokens = image_tokens(latent), features = 4 * p_.out_channels, n = tokens * features;
    if (out.numel() != n * (g.cfg != 1 ? 2 : 1))
      fail("Qwen-Image output {} does not hold {} prediction(s) for latent {}", shape_string(out.shape),
           g.cfg != 1 ? 2 : 1, shape_string(latent));
    HostTensor packed(Shape{1, tokens, features}, std::vector<float>(out.data.begin(), out.data.begin() + n));
    if (g.cfg != 1) {
      const HostTensor cond = packed;
      const HostTensor uncond(packed.shape, std::vector<float>(out.data.begin() + n, out.data.end()));
      runtime::cfg_combine(cond, uncond, g.cfg, packed);
      // The pipeline's rescale: each token's combination scaled to the norm of its positive
      // prediction (over the packed features).
      for (int64_t i = 0; i < tokens; ++i) {
        double cond_sq = 0, comb_sq = 0;
        for (int64_t f = 0; f < features; ++f) {
          cond_sq += double(cond.data[size_t(i * features + f)]) * cond.data[size_t(i * features + f)];
          comb_sq += double(packed.data[size_t(i * features + f)]) * packed.data[size_t(i * features + f)];
        }
        const float ratio = float(std::sqrt(cond_sq)) / float(std::sqrt(comb_sq));
        for (int64_t f = 0; f < features; ++f) packed.data[size_t(i * features + f)] *= ratio;
      }
    }
    Shape batched_latent = latent;
    batched_latent.insert(batched_latent.begin(), 1);
    return unbatched(unpatchify_2x2(packed, batched_latent, PatchOrder::ChannelMajor));
  }

 private:
  arch::QwenImageParams p_;
};

}  // namespace

std::unique_ptr<Denoiser> make_denoiser(const arch::ModelConfig& config) {
  switch (config.family) {
    case arch::Family::Flux: return std::make_unique<FluxDenoiser>(arch::flux_params(config));
    case arch::Family::Wan: return std::make_unique<WanDenoiser>(arch::wan_params(config));
    case arch::Family::SD3: return std::make_unique<SD3Denoiser>(arch::sd3_params(config));
    case arch::Family::QwenImage: return std::make_unique<QwenImageDenoiser>(arch::qwen_image_params(config));
  }
  fail("{}: unknown model family", config.variant);
}

int64_t latent_stride(const arch::ModelConfig& config) {
  return config.family == arch::Family::Wan ? wan_latent_stride(arch::wan_params(config)) : 8;
}

Denoiser::NetworkCall local_network(runtime::Backend& backend, const runtime::Model& network,
                                    runtime::WeightStore& weights) {
  return [&backend, &network, &weights](const HostTensors& inputs) {
    return runtime::run_model(backend, network, weights, inputs);
  };
}

}  // namespace ditrun::models
