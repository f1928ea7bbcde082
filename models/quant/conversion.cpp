#include "models/quant/conversion.h"

#include <algorithm>
#include <cctype>

#include "models/arch/layout.h"
#include "models/quant/fp8_quantize.h"
#include "runtime/core/error.h"
#include "runtime/core/parallel.h"

namespace ditrun::quant {
namespace {


// The float type a high-precision tensor keeps: its own if it is a float type, else bf16.
DType kept_float(DType source) {
  return (source == DType::F32 || source == DType::F16 || source == DType::BF16) ? source : DType::BF16;
}

TensorConversion plan_gguf(const ConversionTarget& target, std::optional<arch::Family> family, const std::string& name,
                           const Shape& shape, DType source) {
  const int64_t elems = formats::element_count(shape);
  // Outside a DiT family (text encoders) no tensor is kept back by name.
  const auto f32_fragments = family ? arch::gguf_f32_name_fragments(*family) : std::span<const std::string_view>{};
  const bool hiprec = std::any_of(f32_fragments.begin(), f32_fragments.end(),
                                  [&](std::string_view f) { return name.find(f) != std::string::npos; });
  // convert.py: 1-D, tiny, >4-D (re-added by fix_5d_tensors) and keys_hiprec tensors are F32.
  if (shape.size() <= 1 || elems <= 1024 || shape.size() > 4 || hiprec) return {DType::F32};
  const DType base = source == DType::F32 ? DType::F16 : kept_float(source);
  const auto keep = family ? arch::gguf_unquantized_prefixes(*family) : std::span<const std::string_view>{};
  const bool excluded = std::any_of(keep.begin(), keep.end(), [&](std::string_view p) { return name.starts_with(p); });
  // The patched llama-quantize only quantizes 2-D tensors whose name ends in "weight".
  if (excluded || shape.size() != 2 || !name.ends_with("weight")) return {base};
  const DTypeInfo& row = dtype_info(target.dtype);
  if (shape.back() % row.block_elems != 0) return {DType::F16};  // the K-quant fallback rule
  return {target.dtype};
}

}  // namespace

ConversionTarget ConversionTarget::parse(std::string_view spec) {
  std::string s(spec);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  ConversionTarget t;
  t.spec = std::string(spec);
  if (s == "bf16" || s == "f16" || s == "fp16" || s == "f32" || s == "fp32") {
    t.kind = TargetKind::Float;
    t.dtype = *dtype_from_user_name(s);
    return t;
  }
  if (s == "fp8" || s == "fp8-e4m3" || s == "fp8_e4m3fn" || s == "fp8-e5m2") {
    t.kind = TargetKind::Fp8;
    t.dtype = s == "fp8-e5m2" ? DType::F8_E5M2 : DType::F8_E4M3;
    return t;
  }
  if (s == "fp8-scaled" || s == "fp8_scaled") {
    t.kind = TargetKind::Fp8Scaled;
    t.dtype = DType::F8_E4M3;
    return t;
  }
  if (s.starts_with("fp8-block")) {
    t.kind = TargetKind::Fp8Block;
    t.dtype = DType::F8_E4M3;
    const std::string n = s.substr(9);
    if (!n.empty()) {
      if (n.find_first_not_of("0123456789") != std::string::npos || n.size() > 6) fail("--to {}: bad block size '{}'", spec, n);
      t.block = std::stoll(n);
      if (t.block <= 0) fail("--to {}: block size must be positive", spec);
    }
    return t;
  }
  if (const auto d = dtype_from_user_name(s); d && dtype_info(*d).kind == DTypeKind::Quantized) {
    if (!dtype_info(*d).from_f32) fail("--to {}: ditrun cannot write {} yet", spec, dtype_name(*d));
    t.kind = TargetKind::Gguf;
    t.dtype = *d;
    return t;
  }
  fail("unknown weight encoding '{}'; expected one of: {}", spec, conversion_targets_help());
}

std::string conversion_targets_help() {
  std::string out = "bf16, f16, f32, fp8, fp8-e5m2, fp8-scaled, fp8-block[N]";
  for (const auto& row : all_dtypes())
    if (row.kind == DTypeKind::Quantized && row.from_f32) out += ", " + std::string(row.name);
  return out;
}

uint32_t ConversionTarget::gguf_file_type() const {
  switch (dtype) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q4_1: return 3;
    case DType::Q8_0: return 7;
    case DType::Q5_0: return 8;
    case DType::Q5_1: return 9;
    case DType::Q2_K: return 10;
    case DType::Q3_K: return 12;  // Q3_K_M
    case DType::Q4_K: return 15;  // Q4_K_M
    case DType::Q5_K: return 17;  // Q5_K_M
    case DType::Q6_K: return 18;
    case DType::IQ4_NL: return 25;
    case DType::IQ4_XS: return 30;
    case DType::BF16: return 32;
    default: return 0;
  }
}

TensorConversion plan_conversion(const ConversionTarget& target, std::optional<arch::Family> family, const std::string& name,
                                 const Shape& shape, DType source, bool inside_block) {
  const bool is_float_source = dtype_info(source).kind != DTypeKind::Integer;
  if (!is_float_source) return {source};  // integer tensors (markers, indices) pass through
  switch (target.kind) {
    case TargetKind::Float:
      return {target.dtype};
    case TargetKind::Gguf:
      return plan_gguf(target, family, name, shape, source);
    case TargetKind::Fp8:
    case TargetKind::Fp8Scaled:
    case TargetKind::Fp8Block: {
      const bool linear = inside_block && shape.size() == 2 && name.ends_with(".weight") &&
                          name.find("norm") == std::string::npos;
      if (!linear) return {kept_float(source)};
      TensorConversion c{target.dtype};
      if (target.kind == TargetKind::Fp8Scaled) c.scale = TensorConversion::Scale::PerTensor;
      if (target.kind == TargetKind::Fp8Block) c.scale = TensorConversion::Scale::Block;
      return c;
    }
  }
  return {kept_float(source)};
}

std::vector<OutputTensor> conversion_outputs(const TensorConversion& conv, const std::string& name, const Shape& shape,
                                             DType source, int64_t block) {
  std::vector<OutputTensor> out{{name, conv.storage, shape}};
  const std::string layer = name.ends_with(".weight") ? name.substr(0, name.size() - 7) : name;
  if (conv.scale == TensorConversion::Scale::PerTensor) {
    out.push_back({layer + ".scale_weight", DType::F32, {}});
  } else if (conv.scale == TensorConversion::Scale::Block) {
    const int64_t rows = shape[0], cols = shape[1];
    const Shape scale_shape = cols % block == 0 ? Shape{rows, cols / block, 1} : Shape{rows, 1};
    out.push_back({layer + ".scale_weight", kept_float(source), scale_shape});
  }
  return out;
}

std::vector<std::vector<uint8_t>> encode_conversion(const TensorConversion& conv, std::span<const float> values,
                                                    const Shape& shape, DType source, int64_t block) {
  // Rows are independent blocks of the encoding, so large tensors encode in parallel.
  auto encode_as = [&](DType type, std::span<const float> v) {
    std::vector<uint8_t> bytes(size_t(dtype_bytes(type, int64_t(v.size()), dtype_name(type))));
    const int64_t row = shape.empty() || v.size() != size_t(formats::element_count(shape)) ? int64_t(v.size()) : shape.back();
    const int64_t nrows = row > 0 ? int64_t(v.size()) / row : 0;
    const int64_t row_bytes = nrows > 0 ? int64_t(bytes.size()) / nrows : 0;
    parallel_for(nrows, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(row, 1)), [&](int64_t r0, int64_t r1) {
      quantize_from_f32(type, v.subspan(size_t(r0 * row), size_t((r1 - r0) * row)),
                        std::span<uint8_t>(bytes).subspan(size_t(r0 * row_bytes), size_t((r1 - r0) * row_bytes)));
    });
    return bytes;
  };
  if (conv.scale == TensorConversion::Scale::None) return {encode_as(conv.storage, values)};
  const int64_t rows = shape[0], cols = shape[1];
  if (conv.scale == TensorConversion::Scale::PerTensor) {
    Fp8Quantized q = quantize_fp8_per_tensor(values, rows, cols, conv.storage);
    return {std::move(q.bytes), encode_as(DType::F32, q.scales)};
  }
  Fp8Quantized q = quantize_fp8_blockwise(values, rows, cols, block, kept_float(source));
  return {std::move(q.bytes), encode_as(kept_float(source), q.scales)};
}

}  // namespace ditrun::quant
