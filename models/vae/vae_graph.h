// The building blocks both VAE designs are made of, as calls on a Backend: an activation with
// its volume, weights by name (loaded on first use, checked against the config's shapes),
// convolutions, norms, attention over the positions of each frame, and the intermediates
// handed to a sink in the reference layout.
#pragma once

#include <string>

#include "models/common/loaded_weights.h"
#include "models/vae/vae.h"

namespace ditrun::models::vae {

// An activation [B, T·H·W, C] and the volume its rows cover.
struct Act {
  Tensor t;
  Volume v;
  int64_t channels() const { return t.cols(); }
  int64_t batch() const { return t.batch(); }
};

class VaeGraph {
 public:
  VaeGraph(runtime::Backend& backend, const quant::WeightSet& weights, std::string source)
      : backend_(backend), weights_(backend, weights, std::move(source), "VAE") {}

  runtime::Backend& backend() { return backend_; }
  const std::string& source() const { return weights_.source(); }
  bool has(const std::string& name) const { return weights_.has(name); }
  // The weight, loaded to the backend once (LoadedWeights::get).
  const runtime::DeviceWeight& weight(const std::string& name, int64_t expected_numel = 0) {
    return weights_.get(name, expected_numel);
  }

  Act empty(int64_t batch, const Volume& v, int64_t channels);
  // y = conv(x) + bias with `<name>.weight` and `<name>.bias`, C_out from the weight.
  Act conv(const Act& x, const std::string& name, const ConvSpec& spec);
  Act group_norm(const Act& x, const std::string& name, int64_t groups, float eps);  // `<name>.weight/bias`
  // Wan's RMS_norm: x / ‖x‖ · sqrt(C) · gamma (`<name>.gamma`), per position.
  Act channel_rms(const Act& x, const std::string& name);
  void silu(Act& x);
  void add(Act& x, const Act& y);
  Act upsample2x(const Act& x);
  // Single-head attention over the positions of each frame (head dim = C, frames do not mix)
  // with 1x1 projections; the caller adds the residual.
  struct AttentionNames {
    std::string qkv;      // one fused projection to [q | k | v] (Wan's to_qkv), or empty and:
    std::string q, k, v;  // three (Flux)
    std::string out;
  };
  Act frame_attention(const Act& normed, const AttentionNames& names);
  // Frames [first, first + count) of x, a view.
  static Act frames(const Act& x, int64_t first, int64_t count);
  // x's frames followed by y's (same batch, plane and channels).
  Act concat_frames(const Act& x, const Act& y);
  // Frames [first, first + count) of x in memory of their own (a view would keep all of x).
  Act copy_frames(const Act& x, int64_t first, int64_t count);

  // The first `n` channels of a PyTorch-layout tensor [B, C, ...] (the posterior mean of the
  // moments [mean | log-variance] an encoder ends with).
  static HostTensor leading_channels(const HostTensor& t, int64_t n);

  // PyTorch layout of an activation: [B, C, H, W] (`video` false, T must be 1) or [B, C, T, H, W].
  HostTensor download(const Act& x, bool video);
  Act upload(const HostTensor& t, bool video);  // the inverse
  void emit(const IntermediateSink& sink, const std::string& name, const Act& x, bool video) {
    if (sink) sink(name + ".out", download(x, video));
  }

 private:
  runtime::Backend& backend_;
  LoadedWeights weights_;
};

}  // namespace ditrun::models::vae
