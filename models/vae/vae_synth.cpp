#include "models/vae/vae_synth.h"

#include <cmath>
#include <cstring>

#include "models/formats/safetensors.h"
#include "models/synth/synthetic_model.h"
#include "models/synth/synthetic_values.h"
#include "models/vae/vae_layout.h"
#include "runtime/core/error.h"
#include "runtime/core/float_codecs.h"

namespace ditrun::models::vae {

void write_synthetic_vae(const VaeConfig& config, uint64_t seed, const std::string& path) {
  config.validate(path);
  const std::vector<NamedShape> layout = vae_tensor_layout(config);
  std::vector<formats::SafetensorsEntry> entries;
  for (const auto& t : layout) entries.push_back({t.name, DType::BF16, t.shape});
  formats::SafetensorsWriter writer(path, entries, {{synth::kConfigMetadataKey, config.to_json().dump()}});
  for (const auto& t : layout) {
    const int64_t n = shape_numel(t.shape);
    std::vector<float> values(static_cast<size_t>(n));
    synth::normal_stream(synth::tensor_key(seed, t.name), 0, values);
    const bool norm = t.name.ends_with(".gamma") || (t.shape.size() == 1 && t.name.find("norm") != std::string::npos);
    if (t.name.ends_with(".bias") && t.name.find("norm") == std::string::npos) {
      for (float& v : values) v *= 0.02f;
    } else if (norm && t.name.ends_with(".bias")) {
      for (float& v : values) v *= 0.05f;
    } else if (norm) {
      for (float& v : values) v = 1.0f + 0.05f * v;
    } else {
      // The last conv a little smaller: pixels mostly inside [-1, 1] rather than clipped.
      const double fan_in = double(n) / double(t.shape[0]);
      const double gain = t.name == "decoder.conv_out.weight" || t.name == "decoder.head.2.weight" ? 0.3 : 1.0;
      for (float& v : values) v = float(gain * v / std::sqrt(fan_in));
    }
    std::vector<uint8_t> bytes(size_t(n) * 2);
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t b = f32_to_bf16(values[size_t(i)]);
      std::memcpy(&bytes[size_t(i) * 2], &b, 2);
    }
    writer.write_next(bytes);
  }
  writer.finish();
}

VaeConfig tiny_vae_preset(std::string_view name) {
  if (name == "flux-ae-tiny") {
    VaeConfig c = vae_preset("flux-ae");
    c.flux.ch = 32;
    c.flux.ch_mult = {1, 1, 2, 2};
    c.flux.num_res_blocks = 1;
    return c;
  }
  if (name == "wan21-vae-tiny") {
    VaeConfig c = vae_preset("wan2.1-vae");
    c.wan.dim = c.wan.dec_dim = 8;
    c.wan.dim_mult = {1, 2, 2, 2};
    c.wan.num_res_blocks = 1;
    return c;
  }
  fail("unknown tiny VAE '{}' (flux-ae-tiny, wan21-vae-tiny)", name);
}

}  // namespace ditrun::models::vae
