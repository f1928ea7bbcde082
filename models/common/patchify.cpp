#include "models/common/patchify.h"

#include "runtime/core/error.h"

namespace ditrun::models {
namespace {

struct Grid {
  int64_t batch, channels, frames, height, width;
  int64_t tokens() const { return frames * (height / 2) * (width / 2); }
};

Grid grid_of(const Shape& s) {
  if (s.size() != 4 && s.size() != 5) fail("latent shape {} is neither [B, C, H, W] nor [B, C, F, H, W]", shape_string(s));
  Grid g{s[0], s[1], s.size() == 5 ? s[2] : 1, s[s.size() - 2], s.back()};
  if (g.height % 2 != 0 || g.width % 2 != 0)
    fail("latent shape {}: height and width must be even for 2x2 patches", shape_string(s));
  return g;
}

int64_t feature(PatchOrder order, int64_t c, int64_t p, int64_t channels) {
  return order == PatchOrder::ChannelMajor ? c * 4 + p : p * channels + c;
}

// Calls fn(latent index, token-tensor index) for every element.
template <class Fn>
void for_each_element(const Grid& g, PatchOrder order, Fn&& fn) {
  const int64_t hp = g.height / 2, wp = g.width / 2, feat = 4 * g.channels, L = g.tokens();
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t c = 0; c < g.channels; ++c)
      for (int64_t f = 0; f < g.frames; ++f)
        for (int64_t y = 0; y < g.height; ++y)
          for (int64_t x = 0; x < g.width; ++x) {
            const int64_t latent = (((b * g.channels + c) * g.frames + f) * g.height + y) * g.width + x;
            const int64_t token = (f * hp + y / 2) * wp + x / 2;
            const int64_t p = (y % 2) * 2 + x % 2;
            fn(latent, (b * L + token) * feat + feature(order, c, p, g.channels));
          }
}

}  // namespace

HostTensor patchify_2x2(const HostTensor& x, PatchOrder order) {
  const Grid g = grid_of(x.shape);
  HostTensor out(Shape{g.batch, g.tokens(), 4 * g.channels});
  for_each_element(g, order, [&](int64_t latent, int64_t tok) { out.data[size_t(tok)] = x.data[size_t(latent)]; });
  return out;
}

HostTensor unpatchify_2x2(const HostTensor& tokens, const Shape& latent_shape, PatchOrder order) {
  const Grid g = grid_of(latent_shape);
  const Shape want{g.batch, g.tokens(), 4 * g.channels};
  if (tokens.shape != want)
    fail("model output {} does not fit latent {} (want {})", shape_string(tokens.shape), shape_string(latent_shape),
         shape_string(want));
  HostTensor out(latent_shape);
  for_each_element(g, order, [&](int64_t latent, int64_t tok) { out.data[size_t(latent)] = tokens.data[size_t(tok)]; });
  return out;
}

}  // namespace ditrun::models
