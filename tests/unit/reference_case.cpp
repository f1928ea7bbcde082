#include "reference_case.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <limits>

#include "models/pipeline/network.h"
#include "models/pipeline/tensor_files.h"
#include "models/vae/vae.h"
#include "models/vae/vae_source.h"
#include "runtime/backend/cpu_backend.h"
#include "test_paths.h"

namespace ditrun::test {

ReferenceCase::ReferenceCase(const std::string& name, const std::string& variant, runtime::Precision precision)
    : ReferenceCase(name, variant, runtime::make_cpu_backend({precision, 0})) {}

ReferenceCase::ReferenceCase(const std::string& name, const std::string& variant,
                             std::unique_ptr<runtime::Backend> on)
    : backend(std::move(on)) {
  const std::string base = testdata("reference/" + name);
  const std::string file = variant.empty() ? base + ".safetensors" : base + "-" + variant + ".gguf";
  source = models::open_model(file, base + ".config.json");
  network = models::make_network(source.config);
  models::check_weights_present(*network, *source.weights);
  weights = std::make_unique<runtime::WeightStore>(*backend, *network,
                                                   [&](const std::string& n) { return source.weights->find(n); });
  io = models::read_host_tensors(variant.empty() ? base + ".io.safetensors" : base + "-" + variant + ".io.safetensors");
}

VaeCaseRun run_vae_case(const std::string& name, runtime::Backend& backend) {
  const std::string base = testdata("reference/" + name);
  const auto src = models::vae::open_vae(base + ".safetensors", base + ".config.json");
  auto vae = models::vae::make_vae(src.config, backend, *src.weights, base + ".safetensors");
  VaeCaseRun run;
  run.io = models::read_host_tensors(base + ".io.safetensors");
  const auto sink = [&](const std::string& n, const HostTensor& t) { run.outputs[n] = t; };
  run.outputs["decode.out"] = vae->decode(run.io.at("in.z"), sink, models::vae::FramePass::WholeSequence);
  run.outputs["decode.chunked"] = vae->decode(run.io.at("in.z"));
  auto encoded = vae->encode(run.io.at(src.config.video() ? "in.video" : "in.image"), sink);
  run.outputs["encode.mean"] = std::move(encoded.mean);
  run.outputs["encode.out"] = std::move(encoded.latent);
  return run;
}

HostTensor batch_item(const HostTensor& t, int64_t b) {
  Shape s(t.shape.begin() + 1, t.shape.end());
  const int64_t n = shape_numel(s);
  return HostTensor(s, std::vector<float>(t.data.begin() + b * n, t.data.begin() + (b + 1) * n));
}

runtime::HostTensors reference_inputs(const runtime::HostTensors& io) {
  runtime::HostTensors in;
  for (const auto& [name, t] : io)
    if (name.starts_with("in.")) in.emplace(name.substr(3), t);
  return in;
}

std::string test_label(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

double max_abs_diff(const HostTensor& a, const HostTensor& b) {
  EXPECT_EQ(a.shape, b.shape);
  if (a.shape != b.shape) return std::numeric_limits<double>::infinity();
  double m = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const double d = std::fabs(double(a.data[i]) - double(b.data[i]));
    if (!(d <= m)) m = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
  }
  return m;
}

}  // namespace ditrun::test
