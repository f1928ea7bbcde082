// Wan's causal video VAEs (wan/modules/vae.py for 2.1, vae2_2.py for 2.2), computed over the
// whole sequence at once: every causal conv pads 2 zero frames in front, which is what the
// official frame-by-frame decode with its feature cache computes (testdata README: 3e-6).
// Temporal resampling keeps frame 0 apart, as the official first chunk does.
//
// 2.1 names its stages' modules in one flat list (`decoder.upsamples.N`); 2.2 nests them per
// stage (`decoder.upsamples.I.upsamples.J`) and adds parameter-free shortcuts around each stage
// (AvgDown3D, DupUp3D), with 2x2-patchified pixels.
#include <fmt/format.h>

#include <functional>
#include <map>
#include <set>

#include "models/vae/vae_graph.h"
#include "models/vae/vae_models.h"
#include "runtime/core/error.h"

namespace ditrun::models::vae {
namespace {

ConvSpec time_conv_spec(bool down) {
  ConvSpec s;
  s.kernel = {3, 1, 1};
  if (down) s.stride = {2, 1, 1};
  else s.pad_before = {2, 0, 0};
  return s;
}

class WanVae final : public Vae {
 public:
  WanVae(const VaeConfig& config, runtime::Backend& backend, const quant::WeightSet& weights, const std::string& source)
      : config_(config), p_(config_.wan), v22_(config.kind == VaeKind::Wan22), g_(backend, weights, source) {}

  const VaeConfig& config() const override { return config_; }

  HostTensor decode(const HostTensor& z, const IntermediateSink& sink, FramePass pass) override {
    if (z.shape.size() != 5 || z.shape[1] != p_.z_dim)
      fail("{}: {} decodes latents [B, {}, T, h, w], got {}", g_.source(), config_.name(), p_.z_dim,
           shape_string(z.shape));
    // z·std + mean per channel, then conv2 (as WanVAE_.decode).
    HostTensor scaled = z;
    const int64_t per_channel = z.shape[2] * z.shape[3] * z.shape[4];
    for (size_t i = 0; i < scaled.data.size(); ++i) {
      const size_t c = (i / size_t(per_channel)) % size_t(p_.z_dim);
      scaled.data[i] = float(scaled.data[i] * p_.latent_std[c] + p_.latent_mean[c]);
    }
    const Act latent = g_.conv(g_.upload(scaled, true), "conv2", ConvSpec{});
    emit(sink, "decode.conv2", latent);
    if (pass == FramePass::WholeSequence || latent.v.t == 1) return pixels_of(decoder(latent, sink, true));

    // Frame by frame: each causal conv continues from the frames it saw last (cache_).
    CausalCache cache;
    cache_ = &cache;
    HostTensor out;
    try {
      for (int64_t t = 0; t < latent.v.t; ++t) append_frames(out, pixels_of(decoder(VaeGraph::frames(latent, t, 1), {}, t == 0)));
    } catch (...) {
      cache_ = nullptr;
      throw;
    }
    cache_ = nullptr;
    return out;
  }

  Encoded encode(const HostTensor& pixels, const IntermediateSink& sink) override {
    if (pixels.shape.size() != 5 || pixels.shape[1] != 3)
      fail("{}: {} encodes videos [B, 3, F, H, W], got {}", g_.source(), config_.name(), shape_string(pixels.shape));
    const int64_t stride = config_.spatial_stride(), ts = config_.temporal_stride();
    if (pixels.shape[3] % stride != 0 || pixels.shape[4] % stride != 0)
      fail("{}: video {}x{} is not a multiple of {} pixels", g_.source(), pixels.shape[4], pixels.shape[3], stride);
    // The official encode drops the frames beyond 1 + ts·⌊(F−1)/ts⌋.
    const int64_t frames = 1 + ts * ((pixels.shape[2] - 1) / ts);
    HostTensor input = keep_frames(pixels, frames);
    if (v22_) input = repack(input, true);
    Act x = g_.conv(g_.upload(input, true), "encoder.conv1", ConvSpec::causal(3, 3));
    const int64_t stages = int64_t(p_.dim_mult.size());
    int64_t flat = 0;
    for (int64_t i = 0; i < stages; ++i) {
      const bool resample = i != stages - 1, temporal = resample && p_.temperal_downsample[size_t(i)];
      const Act stage_in = x;
      x = stage(std::move(x), "encoder.downsamples", i, p_.num_res_blocks, flat, sink,
                resample ? Resampler([&](const Act& a, const std::string& n) { return downsample(a, n, temporal); })
                         : Resampler());
      if (v22_) {
        const int64_t ft = temporal ? 2 : 1, fs = resample ? 2 : 1;
        Act shortcut = g_.empty(x.batch(), avg_down_volume(stage_in.v, ft, fs), x.channels());
        g_.backend().avg_down3d(stage_in.t, stage_in.v, ft, fs, shortcut.t);
        g_.add(x, shortcut);
        emit(sink, fmt::format("encode.encoder.downsamples.{}", i), x);
      }
    }
    x = middle("encoder.middle", std::move(x), sink, "encode.");
    x = g_.channel_rms(x, "encoder.head.0");
    g_.silu(x);
    x = g_.conv(x, "encoder.head.2", ConvSpec::causal(3, 3));
    emit(sink, "encode.encoder", x);
    // conv1 gives [mu | log_var]; there is no sampling.
    const HostTensor moments = g_.download(g_.conv(x, "conv1", ConvSpec{}), true);
    const int64_t z = p_.z_dim, per_channel = moments.shape[2] * moments.shape[3] * moments.shape[4];
    Encoded out;
    out.mean = VaeGraph::leading_channels(moments, z);
    out.latent = out.mean;
    for (size_t i = 0; i < out.latent.data.size(); ++i) {
      const size_t c = (i / size_t(per_channel)) % size_t(z);
      out.latent.data[i] = float((out.latent.data[i] - p_.latent_mean[c]) / p_.latent_std[c]);
    }
    return out;
  }

 private:
  void emit(const IntermediateSink& sink, const std::string& name, const Act& x) { g_.emit(sink, name, x, true); }

  // Decoder3d from its input (conv2's output) to the head's output. `first_chunk`: the
  // sequence's first frames are in x (DupUp3D drops its leading frames only there).
  Act decoder(Act x, const IntermediateSink& sink, bool first_chunk) {
    x = causal(x, "decoder.conv1", ConvSpec::causal(3, 3));
    emit(sink, "decode.decoder.conv1", x);
    x = middle("decoder.middle", std::move(x), sink, "decode.");

    const int64_t stages = int64_t(p_.dim_mult.size());
    const std::vector<bool> temporal_up(p_.temperal_downsample.rbegin(), p_.temperal_downsample.rend());
    int64_t flat = 0;  // 2.1's running module index
    for (int64_t i = 0; i < stages; ++i) {
      const bool resample = i != stages - 1, temporal = resample && temporal_up[size_t(i)];
      const Act stage_in = x;
      x = stage(std::move(x), "decoder.upsamples", i, p_.num_res_blocks + 1, flat, sink,
                resample ? Resampler([&](const Act& a, const std::string& n) { return upsample(a, n, temporal); })
                         : Resampler());
      if (v22_) {
        if (resample) {
          const int64_t ft = temporal ? 2 : 1, drop = first_chunk ? ft - 1 : 0;
          Act shortcut = g_.empty(x.batch(), dup_up_volume(stage_in.v, ft, 2, drop), x.channels());
          g_.backend().dup_up3d(stage_in.t, stage_in.v, ft, 2, drop, shortcut.t);
          g_.add(x, shortcut);
        }
        emit(sink, fmt::format("decode.decoder.upsamples.{}", i), x);
      }
    }
    x = g_.channel_rms(x, "decoder.head.0");
    emit(sink, "decode.decoder.head.0", x);
    g_.silu(x);
    return causal(x, "decoder.head.2", ConvSpec::causal(3, 3));
  }

  HostTensor pixels_of(const Act& x) {
    HostTensor out = g_.download(x, true);
    return v22_ ? repack(out, false) : out;
  }

  // acc ← acc's frames then part's ([B, C, F, H, W]; acc empty: part).
  static void append_frames(HostTensor& acc, const HostTensor& part) {
    if (acc.shape.empty()) {
      acc = part;
      return;
    }
    const int64_t bc = acc.shape[0] * acc.shape[1], plane = acc.shape[3] * acc.shape[4];
    const int64_t fa = acc.shape[2], fp = part.shape[2];
    HostTensor joined(Shape{acc.shape[0], acc.shape[1], fa + fp, acc.shape[3], acc.shape[4]});
    for (int64_t i = 0; i < bc; ++i) {
      std::copy_n(acc.data.begin() + i * fa * plane, fa * plane, joined.data.begin() + i * (fa + fp) * plane);
      std::copy_n(part.data.begin() + i * fp * plane, fp * plane, joined.data.begin() + (i * (fa + fp) + fa) * plane);
    }
    acc = std::move(joined);
  }

  // A causal conv over x. Frame by frame (cache_ set), it continues from the last kt−1 input
  // frames it saw, padding with zero frames only before the sequence's first; otherwise it
  // pads kt−1 zero frames in front of x (the whole sequence).
  Act causal(const Act& x, const std::string& name, ConvSpec spec) {
    const int64_t keep = spec.kernel[0] - 1;
    if (!cache_ || keep == 0) return g_.conv(x, name, spec);
    const auto it = cache_->tail.find(name);
    const Act input = it == cache_->tail.end() ? x : g_.concat_frames(it->second, x);
    const int64_t cached = input.v.t - x.v.t;
    spec.pad_before[0] = keep - cached;
    Act y = g_.conv(input, name, spec);
    const int64_t n = std::min(keep, input.v.t);
    cache_->tail[name] = g_.copy_frames(input, input.v.t - n, n);
    return y;
  }

  using Resampler = std::function<Act(const Act&, const std::string&)>;

  // One stage of `list` ("encoder.downsamples", "decoder.upsamples"): `blocks` residual
  // blocks, then the resampler (if any), under the release's names: 2.1 numbers every module
  // of every stage in one flat list (continuing at `flat`, each module's output reported),
  // 2.2 nests them per stage (the caller adds the shortcut and reports the stage).
  Act stage(Act x, const std::string& list, int64_t i, int64_t blocks, int64_t& flat, const IntermediateSink& sink,
            const Resampler& resample) {
    const std::string prefix = v22_ ? fmt::format("{}.{}.{}.", list, i, list.substr(list.find('.') + 1)) : list + ".";
    const std::string direction = list.starts_with("encoder") ? "encode." : "decode.";
    int64_t j = v22_ ? 0 : flat;
    for (int64_t b = 0; b < blocks; ++b, ++j) {
      x = residual(x, prefix + std::to_string(j));
      if (!v22_) emit(sink, direction + prefix + std::to_string(j), x);
    }
    if (resample) {
      x = resample(x, prefix + std::to_string(j));
      if (!v22_) emit(sink, direction + prefix + std::to_string(j), x);
      ++j;
    }
    if (!v22_) flat = j;
    return x;
  }

  // RMS, SiLU, causal 3x3x3 conv, RMS, SiLU, causal conv, plus the input (through the 1x1x1
  // `shortcut` when the channel count changes).
  Act residual(const Act& x, const std::string& name) {
    Act h = g_.channel_rms(x, name + ".residual.0");
    g_.silu(h);
    h = causal(h, name + ".residual.2", ConvSpec::causal(3, 3));
    h = g_.channel_rms(h, name + ".residual.3");
    g_.silu(h);
    h = causal(h, name + ".residual.6", ConvSpec::causal(3, 3));
    if (g_.has(name + ".shortcut.weight")) g_.add(h, g_.conv(x, name + ".shortcut", ConvSpec{}));
    else g_.add(h, x);
    return h;
  }

  Act middle(const std::string& prefix, Act x, const IntermediateSink& sink, const std::string& direction) {
    x = residual(x, prefix + ".0");
    emit(sink, direction + prefix + ".0", x);
    const std::string attn = prefix + ".1";
    g_.add(x, g_.frame_attention(g_.channel_rms(x, attn + ".norm"), {.qkv = attn + ".to_qkv", .out = attn + ".proj"}));
    emit(sink, direction + attn, x);
    x = residual(x, prefix + ".2");
    emit(sink, direction + prefix + ".2", x);
    return x;
  }

  // Resample 'upsample3d' / 'upsample2d': the time conv (C → 2C, each frame after the
  // sequence's first becoming two; frame 0 stays one, and the later frames form a causal
  // sequence of their own), then nearest ×2 and a 3x3 conv (2.1: to C/2 channels).
  Act upsample(Act x, const std::string& name, bool temporal) {
    const std::string time_conv = name + ".time_conv";
    const bool has_first = !cache_ || cache_->started.insert(time_conv).second;
    if (temporal && x.v.t > (has_first ? 1 : 0)) {
      const int64_t c = x.channels(), plane = x.v.h * x.v.w, head = has_first ? 1 : 0, later = x.v.t - head;
      const Act doubled = causal(VaeGraph::frames(x, head, later), time_conv, time_conv_spec(false));
      Act out = g_.empty(x.batch(), Volume{head + 2 * later, x.v.h, x.v.w}, c);
      if (head) {
        Tensor first = out.t.slice_rows(0, plane);
        g_.backend().copy(x.t.slice_rows(0, plane), first);
      }
      for (int64_t t = 0; t < later; ++t) {
        for (int64_t half = 0; half < 2; ++half) {
          Tensor dst = out.t.slice_rows((head + 2 * t + half) * plane, plane);
          g_.backend().copy(doubled.t.slice_rows(t * plane, plane).slice_cols(half * c, c), dst);
        }
      }
      x = std::move(out);
    }
    return g_.conv(g_.upsample2x(x), name + ".resample.1", ConvSpec::spatial(3));
  }

  // Resample 'downsample2d' / 'downsample3d': the stride-2 3x3 conv, then (3d) frame 0 kept and
  // the stride-2 time conv over the whole sequence (windows (0,1,2), (2,3,4), ...).
  Act downsample(const Act& x, const std::string& name, bool temporal) {
    Act h = g_.conv(x, name + ".resample.1", ConvSpec::downsample2x());
    if (!temporal) return h;
    const Act first = VaeGraph::frames(h, 0, 1);
    if (h.v.t < 3) return first;  // one frame (1+4k inputs never leave two)
    return g_.concat_frames(first, g_.conv(h, name + ".time_conv", time_conv_spec(true)));
  }

  static HostTensor keep_frames(const HostTensor& v, int64_t frames) {
    if (frames == v.shape[2]) return v;
    const int64_t b = v.shape[0], c = v.shape[1], plane = v.shape[3] * v.shape[4];
    HostTensor out(Shape{b, c, frames, v.shape[3], v.shape[4]});
    for (int64_t i = 0; i < b * c; ++i)
      std::copy_n(v.data.begin() + i * v.shape[2] * plane, frames * plane, out.data.begin() + i * frames * plane);
    return out;
  }

  // [B, 3, F, H, W] ↔ [B, 12, F, H/2, W/2], channel c·4 + r·2 + q for row offset q and
  // column offset r (the column offset the more significant): one index map, either way.
  static HostTensor repack(const HostTensor& v, bool to_patches) {
    const int64_t b = v.shape[0], f = v.shape[2];
    const int64_t c = to_patches ? v.shape[1] : v.shape[1] / 4;
    const int64_t h = to_patches ? v.shape[3] : v.shape[3] * 2, w = to_patches ? v.shape[4] : v.shape[4] * 2;
    HostTensor out(to_patches ? Shape{b, c * 4, f, h / 2, w / 2} : Shape{b, c, f, h, w});
    for (int64_t bi = 0; bi < b; ++bi)
      for (int64_t ci = 0; ci < c; ++ci)
        for (int64_t t = 0; t < f; ++t)
          for (int64_t y = 0; y < h; ++y)
            for (int64_t x = 0; x < w; ++x) {
              const int64_t pc = ci * 4 + (x % 2) * 2 + y % 2;
              const size_t pixel = size_t((((bi * c + ci) * f + t) * h + y) * w + x);
              const size_t patch = size_t((((bi * c * 4 + pc) * f + t) * (h / 2) + y / 2) * (w / 2) + x / 2);
              if (to_patches) out.data[patch] = v.data[pixel];
              else out.data[pixel] = v.data[patch];
            }
    return out;
  }

  // What a frame-by-frame decode carries from one latent frame to the next.
  struct CausalCache {
    std::map<std::string, Act> tail;  // per causal conv: the last kt−1 frames of its input
    std::set<std::string> started;    // temporal upsamplers past the sequence's frame 0
  };

  VaeConfig config_;
  const WanVaeParams& p_;
  bool v22_;
  VaeGraph g_;
  CausalCache* cache_ = nullptr;  // set during a frame-by-frame decode
};

}  // namespace

std::unique_ptr<Vae> make_wan_vae(const VaeConfig& config, runtime::Backend& backend, const quant::WeightSet& weights,
                                  const std::string& source) {
  return std::make_unique<WanVae>(config, backend, weights, source);
}

std::unique_ptr<Vae> make_vae(const VaeConfig& config, runtime::Backend& backend, const quant::WeightSet& weights,
                              const std::string& source) {
  config.validate(source);
  if (config.kind == VaeKind::FluxAE) return make_flux_ae(config, backend, weights, source);
  return make_wan_vae(config, backend, weights, source);
}

}  // namespace ditrun::models::vae
