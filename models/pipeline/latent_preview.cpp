#include "models/pipeline/latent_preview.h"

#include <cmath>

#include "runtime/core/error.h"

namespace ditrun::models {
namespace {

// Factor tables as in models.md §6 (ComfyUI latent_formats.py): one row per latent channel.
constexpr float kFluxFactors[16 * 3] = {
    -0.0346, 0.0244,  0.0681,  0.0034,  0.0210,  0.0687,  0.0275,  -0.0668, -0.0433, -0.0174, 0.0160,  0.0617,
    0.0859,  0.0721,  0.0329,  0.0004,  0.0383,  0.0115,  0.0405,  0.0861,  0.0915,  -0.0236, -0.0185, -0.0259,
    -0.0245, 0.0250,  0.1180,  0.1008,  0.0755,  -0.0421, -0.0515, 0.0201,  0.0011,  0.0428,  -0.0012, -0.0036,
    0.0817,  0.0765,  0.0749,  -0.1264, -0.0522, -0.1103, -0.0280, -0.0881, -0.0499, -0.1262, -0.0982, -0.0778,
};

constexpr float kWan21Factors[16 * 3] = {
    -0.1299, -0.1692, 0.2932,  0.0671,  0.0406,  0.0442,  0.3568,  0.2548,  0.1747,  0.0372,  0.2344,  0.1420,
    0.0313,  0.0189,  -0.0328, 0.0296,  -0.0956, -0.0665, -0.3477, -0.4059, -0.2925, 0.0166,  0.1902,  0.1975,
    -0.0412, 0.0267,  -0.1364, -0.1293, 0.0740,  0.1636,  0.0680,  0.3019,  0.1128,  0.0032,  0.0581,  0.0639,
    -0.1251, 0.0927,  0.1699,  0.0060,  -0.0633, 0.0005,  0.3477,  0.2275,  0.2950,  0.1984,  0.0913,  0.1861,
};

constexpr float kWan22Factors[48 * 3] = {
    0.0119,  0.0103,  0.0046,  -0.1062, -0.0504, 0.0165,  0.0140,  0.0409,  0.0491,  -0.0813, -0.0677, 0.0607,
    0.0656,  0.0851,  0.0808,  0.0264,  0.0463,  0.0912,  0.0295,  0.0326,  0.0590,  -0.0244, -0.0270, 0.0025,
    0.0443,  -0.0102, 0.0288,  -0.0465, -0.0090, -0.0205, 0.0359,  0.0236,  0.0082,  -0.0776, 0.0854,  0.1048,
    0.0564,  0.0264,  0.0561,  0.0006,  0.0594,  0.0418,  -0.0319, -0.0542, -0.0637, -0.0268, 0.0024,  0.0260,
    0.0539,  0.0265,  0.0358,  -0.0359, -0.0312, -0.0287, -0.0285, -0.1032, -0.1237, 0.1041,  0.0537,  0.0622,
    -0.0086, -0.0374, -0.0051, 0.0390,  0.0670,  0.2863,  0.0069,  0.0144,  0.0082,  0.0006,  -0.0167, 0.0079,
    0.0313,  -0.0574, -0.0232, -0.1454, -0.0902, -0.0481, 0.0714,  0.0827,  0.0447,  -0.0304, -0.0574, -0.0196,
    0.0401,  0.0384,  0.0204,  -0.0758, -0.0297, -0.0014, 0.0568,  0.1307,  0.1372,  -0.0055, -0.0310, -0.0380,
    0.0239,  -0.0305, 0.0325,  -0.0663, -0.0673, -0.0140, -0.0416, -0.0047, -0.0023, 0.0166,  0.0112,  -0.0093,
    -0.0211, 0.0011,  0.0331,  0.1833,  0.1466,  0.2250,  -0.0368, 0.0370,  0.0295,  -0.3441, -0.3543, -0.2008,
    -0.0479, -0.0489, -0.0420, -0.0660, -0.0153, 0.0800,  -0.0101, 0.0068,  0.0156,  -0.0690, -0.0452, -0.0927,
    -0.0145, 0.0041,  0.0015,  0.0421,  0.0451,  0.0373,  0.0504,  -0.0483, -0.0356, -0.0837, 0.0168,  0.0055,
};

constexpr float kSD3Factors[16 * 3] = {
    -0.0922, -0.0175, 0.0749,  0.0311,  0.0633,  0.0954,  0.1994,  0.0927,  0.0458,  0.0856,  0.0339,  0.0902,
    0.0587,  0.0272,  -0.0496, -0.0006, 0.1104,  0.0309,  0.0978,  0.0306,  0.0427,  -0.0042, 0.1038,  0.1358,
    -0.0194, 0.0020,  0.0669,  -0.0488, 0.0130,  -0.0268, 0.0922,  0.0988,  0.0951,  -0.0278, 0.0524,  -0.0542,
    0.0332,  0.0456,  0.0895,  -0.0069, -0.0030, -0.0810, -0.0596, -0.0465, -0.0293, -0.1448, -0.1463, -0.1189,
};

const LatentFormat kFlux{"flux", 16, kFluxFactors, {-0.0329f, -0.0718f, -0.0851f}};
const LatentFormat kWan21{"wan21", 16, kWan21Factors, {-0.1835f, -0.0868f, -0.3360f}};
const LatentFormat kWan22{"wan22", 48, kWan22Factors, {0.0317f, -0.0878f, -0.1388f}};
const LatentFormat kSD3{"sd3", 16, kSD3Factors, {0.2394f, 0.2135f, 0.1925f}};

uint8_t to_byte(float rgb) {
  float v = (rgb + 1.0f) / 2.0f;
  if (!(v > 0.0f)) v = 0.0f;  // also catches NaN
  if (v > 1.0f) v = 1.0f;
  return uint8_t(v * 255.0f);  // truncation, as torch's float -> uint8 cast
}

}  // namespace

const LatentFormat& flux_latent_format() { return kFlux; }
const LatentFormat& wan21_latent_format() { return kWan21; }
const LatentFormat& wan22_latent_format() { return kWan22; }
const LatentFormat& sd3_latent_format() { return kSD3; }

const LatentFormat* find_latent_format(std::string_view name) {
  for (const LatentFormat* f : {&kFlux, &kWan21, &kWan22, &kSD3})
    if (f->name == name) return f;
  return nullptr;
}

const LatentFormat& latent_format_for(const arch::ModelConfig& config) {
  switch (config.family) {
    case arch::Family::Flux: return kFlux;
    case arch::Family::SD3: return kSD3;
    case arch::Family::QwenImage: return kWan21;
    case arch::Family::Wan: return arch::wan_params(config).out_dim == 48 ? kWan22 : kWan21;
  }
  return kFlux;
}

std::vector<uint8_t> preview_rgb(const HostTensor& x0, const LatentFormat& format, int& width, int& height) {
  const Shape& s = x0.shape;
  if (s.size() != 3 && s.size() != 4)
    fail("preview: latent shape {}: expected [C, H, W] or [C, F, H, W]", shape_string(s));
  if (s[0] != format.channels)
    fail("preview: latent shape {} has {} channels; the {} latent format has {}", shape_string(s), s[0], format.name,
         format.channels);
  const int64_t h = s[s.size() - 2], w = s[s.size() - 1];
  // Channel c of the first frame starts at c · (frames · h · w): frame 0 is first in each channel.
  const int64_t channel_stride = s.size() == 4 ? s[1] * h * w : h * w;
  std::vector<uint8_t> rgb(size_t(h * w * 3));
  for (int64_t p = 0; p < h * w; ++p) {
    float acc[3] = {0, 0, 0};
    for (int c = 0; c < format.channels; ++c) {
      const float v = x0.data[size_t(c * channel_stride + p)];
      for (int k = 0; k < 3; ++k) acc[k] += v * format.rgb_factors[size_t(c * 3 + k)];
    }
    for (int k = 0; k < 3; ++k) rgb[size_t(p * 3 + k)] = to_byte(acc[k] + format.rgb_bias[size_t(k)]);
  }
  width = int(w);
  height = int(h);
  return rgb;
}

}  // namespace ditrun::models
