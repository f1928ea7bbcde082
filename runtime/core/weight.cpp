#include "runtime/core/weight.h"

#include "runtime/core/error.h"

namespace ditrun {

std::string_view encoding_name(Encoding e) {
  switch (e) {
    case Encoding::Plain: return "plain";
    case Encoding::Gguf: return "gguf";
    case Encoding::ScaledFp8: return "scaled_fp8";
    case Encoding::ComfyQuant: return "comfy_quant";
    case Encoding::BlockFp8: return "block_fp8";
  }
  return "?";
}

void Weight::dequantize(std::span<float> out) const {
  if (int64_t(out.size()) != numel()) fail("tensor '{}': output holds {} floats, weight has {}", name, out.size(), numel());
  dequantize_rows(0, rows(), out);
}

void Weight::dequantize_rows(int64_t row_begin, int64_t row_end, std::span<float> out) const {
  if (!unsupported.empty()) fail("tensor '{}': {}", name, unsupported);
  if (row_begin < 0 || row_begin > row_end || row_end > rows())
    fail("tensor '{}': rows [{}, {}) outside its {} rows", name, row_begin, row_end, rows());
  const int64_t c = cols(), n_rows = row_end - row_begin;
  if (int64_t(out.size()) != n_rows * c)
    fail("tensor '{}': output holds {} floats, {} rows need {}", name, out.size(), n_rows, n_rows * c);
  // Weights can be built by hand (writers, tests): check the scales cover the layout before
  // indexing them.
  size_t want_scales = 0;
  switch (scale_layout) {
    case ScaleLayout::None: break;
    case ScaleLayout::PerTensor: want_scales = 1; break;
    case ScaleLayout::PerRow: want_scales = size_t(rows()); break;
    case ScaleLayout::PerBlock:
      if (scale_block <= 0 || c % scale_block != 0)
        fail("tensor '{}': scale block {} does not divide its {} columns", name, scale_block, c);
      want_scales = size_t(rows() * (c / scale_block));
      break;
  }
  if (scale_layout != ScaleLayout::None && scales.size() != want_scales)
    fail("tensor '{}': {} scales, its layout needs {}", name, scales.size(), want_scales);
  const uint64_t row_bytes = uint64_t(dtype_bytes(storage, c, name));
  if (row_bytes * uint64_t(rows()) != bytes.size())
    fail("tensor '{}': {} bytes stored, {} rows of {} {} need {}", name, bytes.size(), rows(), c,
         dtype_info(storage).name, row_bytes * uint64_t(rows()));
  try {
    dequantize_to_f32(storage, bytes.subspan(size_t(row_bytes * uint64_t(row_begin)), size_t(row_bytes * uint64_t(n_rows))),
                      out);
  } catch (const Error& e) {
    fail("tensor '{}': {}", name, e.what());
  }
  switch (scale_layout) {
    case ScaleLayout::None: break;
    case ScaleLayout::PerTensor:
      for (float& v : out) v *= scales[0];
      break;
    case ScaleLayout::PerRow:
      for (int64_t r = 0; r < n_rows; ++r)
        for (int64_t j = 0; j < c; ++j) out[size_t(r * c + j)] *= scales[size_t(row_begin + r)];
      break;
    case ScaleLayout::PerBlock: {
      const int64_t per_row = c / scale_block;
      for (int64_t r = 0; r < n_rows; ++r)
        for (int64_t j = 0; j < c; ++j)
          out[size_t(r * c + j)] *= scales[size_t((row_begin + r) * per_row + j / scale_block)];
      break;
    }
  }
}

std::vector<float> Weight::dequantize() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  dequantize(out);
  return out;
}

}  // namespace ditrun
