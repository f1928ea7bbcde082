// `ditrun dump FILE TENSOR --out PATH`: one tensor dequantized to f32 (scales applied),
// little-endian, row-major in its PyTorch-order shape. Written atomically.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "launcher/commands.h"
#include "models/formats/checkpoint.h"
#include "models/quant/weight_set.h"
#include "runtime/core/atomic_file.h"
#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

void run_dump(const std::string& path, std::string name, const std::string& out_path) {
  const formats::Checkpoint ck(path);
  // Accept the name as stored too, with the ComfyUI prefix the checkpoint view strips.
  const std::string& prefix = ck.stripped_prefix();
  if (!prefix.empty() && name.compare(0, prefix.size(), prefix) == 0) name.erase(0, prefix.size());
  const quant::WeightSet weights(ck);
  std::vector<float> values;
  formats::Shape shape;
  if (const quant::Weight* w = weights.find(name)) {
    values = w->dequantize();
    shape = w->shape;
  } else if (const formats::TensorRecord* t = ck.find(name)) {
    // Auxiliary tensors (scales, markers) dump as stored values.
    values.resize(size_t(formats::element_count(t->shape)));
    try {
      dequantize_to_f32(t->dtype, ck.data(*t), values);
    } catch (const Error& e) {
      fail("{}: tensor '{}': {}", path, name, e.what());
    }
    shape = t->shape;
  } else {
    fail("{}: no tensor named '{}'", path, name);
  }
  static_assert(std::endian::native == std::endian::little, "dump writes the host's floats as little-endian");
  AtomicFile out(out_path);
  out.write(values.data(), values.size() * sizeof(float));
  out.commit();
  fmt::print("{} {} f32 ({} values) -> {}\n", name, formats::shape_string(shape), values.size(), out_path);
}

}  // namespace

void add_dump_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("dump", "Write one tensor dequantized to f32 (little-endian, row-major)");
  static std::string path, name, out;
  cmd->add_option("file", path, "A .safetensors or .gguf checkpoint")->required();
  cmd->add_option("tensor", name, "Tensor name (model prefix stripped)")->required();
  cmd->add_option("--out", out, "Output file")->required();
  cmd->callback([] { run_dump(path, name, out); });
}

}  // namespace ditrun::launcher
