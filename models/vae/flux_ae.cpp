// BFL's Flux autoencoder (flux/modules/autoencoder.py; SD3.5's VAE has the same design): a
// 2-D ResNet encoder/decoder with one attention block in the middle, GroupNorm(32, eps 1e-6)
// and swish, and the latent de-normalisation z / scale + shift inside decode.
#include <fmt/format.h>

#include "models/vae/vae_graph.h"
#include "models/vae/vae_models.h"
#include "runtime/core/error.h"

namespace ditrun::models::vae {
namespace {

constexpr int64_t kGroups = 32;
constexpr float kEps = 1e-6f;

class FluxAe final : public Vae {
 public:
  FluxAe(const VaeConfig& config, runtime::Backend& backend, const quant::WeightSet& weights, const std::string& source)
      : config_(config), p_(config_.flux), g_(backend, weights, source) {}

  const VaeConfig& config() const override { return config_; }

  HostTensor decode(const HostTensor& z, const IntermediateSink& sink, FramePass) override {
    if (z.shape.size() != 4 || z.shape[1] != p_.z_channels)
      fail("{}: {} decodes latents [B, {}, h, w], got {}", g_.source(), config_.name(), p_.z_channels,
           shape_string(z.shape));
    HostTensor scaled = z;
    for (float& v : scaled.data) v = float(v / p_.scale_factor + p_.shift_factor);
    Act h = g_.conv(g_.upload(scaled, false), "decoder.conv_in", ConvSpec::spatial(3));
    emit(sink, "decode.decoder.conv_in", h);
    h = middle("decoder.mid", std::move(h), sink, "decode.");
    const int64_t levels = int64_t(p_.ch_mult.size());
    for (int64_t i = levels - 1; i >= 0; --i) {
      for (int64_t j = 0; j <= p_.num_res_blocks; ++j) {
        const std::string name = fmt::format("decoder.up.{}.block.{}", i, j);
        h = resnet(h, name);
        emit(sink, "decode." + name, h);
      }
      if (i != 0) {
        const std::string name = fmt::format("decoder.up.{}.upsample", i);
        h = g_.conv(g_.upsample2x(h), name + ".conv", ConvSpec::spatial(3));
        emit(sink, "decode." + name, h);
      }
    }
    h = g_.group_norm(h, "decoder.norm_out", kGroups, kEps);
    emit(sink, "decode.decoder.norm_out", h);
    g_.silu(h);
    return g_.download(g_.conv(h, "decoder.conv_out", ConvSpec::spatial(3)), false);
  }

  Encoded encode(const HostTensor& pixels, const IntermediateSink& sink) override {
    if (pixels.shape.size() != 4 || pixels.shape[1] != p_.in_channels)
      fail("{}: {} encodes images [B, {}, H, W], got {}", g_.source(), config_.name(), p_.in_channels,
           shape_string(pixels.shape));
    const int64_t stride = config_.spatial_stride();
    if (pixels.shape[2] % stride != 0 || pixels.shape[3] % stride != 0)
      fail("{}: image {}x{} is not a multiple of {} pixels", g_.source(), pixels.shape[3], pixels.shape[2], stride);
    Act h = g_.conv(g_.upload(pixels, false), "encoder.conv_in", ConvSpec::spatial(3));
    emit(sink, "encode.encoder.conv_in", h);
    const int64_t levels = int64_t(p_.ch_mult.size());
    for (int64_t i = 0; i < levels; ++i) {
      for (int64_t j = 0; j < p_.num_res_blocks; ++j) {
        const std::string name = fmt::format("encoder.down.{}.block.{}", i, j);
        h = resnet(h, name);
        emit(sink, "encode." + name, h);
      }
      if (i != levels - 1) {
        const std::string name = fmt::format("encoder.down.{}.downsample", i);
        h = g_.conv(h, name + ".conv", ConvSpec::downsample2x());
        emit(sink, "encode." + name, h);
      }
    }
    h = middle("encoder.mid", std::move(h), sink, "encode.");
    h = g_.group_norm(h, "encoder.norm_out", kGroups, kEps);
    g_.silu(h);
    const Act moments = g_.conv(h, "encoder.conv_out", ConvSpec::spatial(3));
    emit(sink, "encode.encoder", moments);
    // Mean, then log-variance: the official AutoEncoder is built with sample_z=False.
    Encoded out;
    out.mean = VaeGraph::leading_channels(g_.download(moments, false), p_.z_channels);
    out.latent = out.mean;
    for (float& v : out.latent.data) v = float(p_.scale_factor * (v - p_.shift_factor));
    return out;
  }

 private:
  void emit(const IntermediateSink& sink, const std::string& name, const Act& x) { g_.emit(sink, name, x, false); }

  // norm1, swish, conv1, norm2, swish, conv2, plus the input (through nin_shortcut when the
  // channel count changes).
  Act resnet(const Act& x, const std::string& name) {
    Act h = g_.group_norm(x, name + ".norm1", kGroups, kEps);
    g_.silu(h);
    h = g_.conv(h, name + ".conv1", ConvSpec::spatial(3));
    h = g_.group_norm(h, name + ".norm2", kGroups, kEps);
    g_.silu(h);
    h = g_.conv(h, name + ".conv2", ConvSpec::spatial(3));
    if (g_.has(name + ".nin_shortcut.weight")) g_.add(h, g_.conv(x, name + ".nin_shortcut", ConvSpec{}));
    else g_.add(h, x);
    return h;
  }

  Act middle(const std::string& prefix, Act h, const IntermediateSink& sink, const std::string& direction) {
    h = resnet(h, prefix + ".block_1");
    emit(sink, direction + prefix + ".block_1", h);
    const std::string attn = prefix + ".attn_1";
    Act a = g_.frame_attention(g_.group_norm(h, attn + ".norm", kGroups, kEps),
                               {.q = attn + ".q", .k = attn + ".k", .v = attn + ".v", .out = attn + ".proj_out"});
    g_.add(h, a);
    emit(sink, direction + attn, h);
    h = resnet(h, prefix + ".block_2");
    emit(sink, direction + prefix + ".block_2", h);
    return h;
  }

  VaeConfig config_;
  const FluxAeParams& p_;
  VaeGraph g_;
};

}  // namespace

std::unique_ptr<Vae> make_flux_ae(const VaeConfig& config, runtime::Backend& backend, const quant::WeightSet& weights,
                                  const std::string& source) {
  return std::make_unique<FluxAe>(config, backend, weights, source);
}

}  // namespace ditrun::models::vae
