#include "models/vae/vae_graph.h"

#include <cmath>

#include "runtime/core/error.h"

namespace ditrun::models::vae {

Act VaeGraph::empty(int64_t batch, const Volume& v, int64_t channels) {
  return {backend_.empty(Shape{batch, v.positions(), channels}), v};
}

Act VaeGraph::conv(const Act& x, const std::string& name, const ConvSpec& spec) {
  const runtime::DeviceWeight& w = weight(name + ".weight");
  if (w.shape().size() < 2 || w.cols() != x.channels() * spec.taps())
    fail("{}: VAE tensor '{}.weight' {} does not take {} channels with a {} convolution", source(), name,
         shape_string(w.shape()), x.channels(), spec.str());
  const runtime::DeviceWeight* bias = has(name + ".bias") ? &weight(name + ".bias", w.rows()) : nullptr;
  Act y = empty(x.batch(), spec.output(x.v, name), w.rows());
  backend_.conv3d(x.t, x.v, w, bias, spec, y.t);
  return y;
}

Act VaeGraph::group_norm(const Act& x, const std::string& name, int64_t groups, float eps) {
  Act y = empty(x.batch(), x.v, x.channels());
  backend_.group_norm(x.t, y.t, groups, eps, weight(name + ".weight", x.channels()), weight(name + ".bias", x.channels()));
  return y;
}

Act VaeGraph::channel_rms(const Act& x, const std::string& name) {
  // rms_norm computes x · rsqrt(mean(x²) + eps) · gamma = x / ‖x‖ · sqrt(C) · gamma; the eps
  // stands for the reference's max(‖x‖, 1e-12).
  const int64_t c = x.channels();
  Act y = empty(x.batch(), x.v, c);
  backend_.rms_norm(x.t, y.t, weight(name + ".gamma", c), c, float(1e-24 / double(c)));
  return y;
}

void VaeGraph::silu(Act& x) { backend_.silu(x.t, x.t); }

void VaeGraph::add(Act& x, const Act& y) {
  if (!(x.v == y.v) || x.channels() != y.channels())
    fail("{}: cannot add activations over {} x {} and {} x {}", source(), x.v.str(), x.channels(), y.v.str(), y.channels());
  backend_.add(x.t, y.t, x.t);
}

Act VaeGraph::upsample2x(const Act& x) {
  Act y = empty(x.batch(), Volume{x.v.t, x.v.h * 2, x.v.w * 2}, x.channels());
  backend_.upsample2x(x.t, x.v, y.t);
  return y;
}

Act VaeGraph::frame_attention(const Act& normed, const AttentionNames& n) {
  const int64_t b = normed.batch(), t = normed.v.t, plane = normed.v.h * normed.v.w, c = normed.channels();
  // Each frame a batch item of its own: attention never crosses frames.
  const Tensor x = normed.t.contiguous() ? normed.t.view(Shape{b * t, plane, c}) : Tensor();
  if (!x.defined()) fail("{}: attention input is not contiguous", source());
  Tensor qkv = backend_.empty(Shape{b * t, plane, 3 * c});
  if (!n.qkv.empty()) {
    backend_.linear(x, weight(n.qkv + ".weight", 3 * c * c), &weight(n.qkv + ".bias", 3 * c), qkv);
  } else {
    const std::string* names[3] = {&n.q, &n.k, &n.v};
    for (int i = 0; i < 3; ++i) {
      Tensor part = qkv.slice_cols(i * c, c);
      backend_.linear(x, weight(*names[i] + ".weight", c * c), &weight(*names[i] + ".bias", c), part);
    }
  }
  Tensor attended = backend_.empty(Shape{b * t, plane, c});
  backend_.attention(qkv.slice_cols(0, c), qkv.slice_cols(c, c), qkv.slice_cols(2 * c, c), attended, 1, {});
  Act y = empty(b, normed.v, c);
  Tensor out = y.t.view(Shape{b * t, plane, c});
  backend_.linear(attended, weight(n.out + ".weight", c * c), &weight(n.out + ".bias", c), out);
  return y;
}

Act VaeGraph::frames(const Act& x, int64_t first, int64_t count) {
  const int64_t plane = x.v.h * x.v.w;
  return {x.t.slice_rows(first * plane, count * plane), Volume{count, x.v.h, x.v.w}};
}

Act VaeGraph::concat_frames(const Act& x, const Act& y) {
  if (x.v.h != y.v.h || x.v.w != y.v.w || x.channels() != y.channels() || x.batch() != y.batch())
    fail("{}: cannot join frames of {} x {} and {} x {}", source(), x.v.str(), x.channels(), y.v.str(), y.channels());
  Act out = empty(x.batch(), Volume{x.v.t + y.v.t, x.v.h, x.v.w}, x.channels());
  Tensor head = out.t.slice_rows(0, x.t.rows()), tail = out.t.slice_rows(x.t.rows(), y.t.rows());
  backend_.copy(x.t, head);
  backend_.copy(y.t, tail);
  return out;
}

Act VaeGraph::copy_frames(const Act& x, int64_t first, int64_t count) {
  const Act view = frames(x, first, count);
  Act out = empty(x.batch(), view.v, x.channels());
  backend_.copy(view.t, out.t);
  return out;
}

HostTensor VaeGraph::leading_channels(const HostTensor& t, int64_t n) {
  const int64_t b = t.shape[0], c = t.shape[1], per_channel = t.numel() / std::max<int64_t>(b * c, 1);
  Shape shape = t.shape;
  shape[1] = n;
  HostTensor out(shape);
  for (int64_t bi = 0; bi < b; ++bi)
    std::copy_n(t.data.begin() + bi * c * per_channel, n * per_channel, out.data.begin() + bi * n * per_channel);
  return out;
}

HostTensor VaeGraph::download(const Act& x, bool video) {
  const int64_t b = x.batch(), c = x.channels(), n = x.v.positions();
  if (!video && x.v.t != 1) fail("{}: an image activation with {} frames", source(), x.v.t);
  std::vector<float> rows(size_t(b * n * c));
  backend_.download(x.t, rows, backend_.compute_stream());
  HostTensor out(video ? Shape{b, c, x.v.t, x.v.h, x.v.w} : Shape{b, c, x.v.h, x.v.w});
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t p = 0; p < n; ++p)
      for (int64_t ci = 0; ci < c; ++ci) out.data[size_t((bi * c + ci) * n + p)] = rows[size_t((bi * n + p) * c + ci)];
  return out;
}

Act VaeGraph::upload(const HostTensor& t, bool video) {
  const size_t rank = video ? 5 : 4;
  if (t.shape.size() != rank)
    fail("{}: expected a {} tensor [B, C, {}H, W], got {}", source(), video ? "video" : "image", video ? "F, " : "",
         shape_string(t.shape));
  const int64_t b = t.shape[0], c = t.shape[1];
  const Volume v = video ? Volume{t.shape[2], t.shape[3], t.shape[4]} : Volume{1, t.shape[2], t.shape[3]};
  const int64_t n = v.positions();
  std::vector<float> rows(size_t(b * n * c));
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t p = 0; p < n; ++p) rows[size_t((bi * n + p) * c + ci)] = t.data[size_t((bi * c + ci) * n + p)];
  Act x = empty(b, v, c);
  backend_.upload(rows, x.t, backend_.compute_stream());
  return x;
}

}  // namespace ditrun::models::vae
